// Bundles end to end: upload through the API, install on real agents
// (releases, hooks, atomic switch, rollback), crash recovery.
import * as grpc from "@grpc/grpc-js";
import { readFile, readlink, readdir, writeFile } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBundle, script, type BundleEntry } from "./helpers/bundles.js";
import { Stack } from "./helpers/stack.js";

const sha = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A bundle whose hooks append "<hook> <release dir>" to $HOOK_LOG; `failing` hooks exit 3. */
function bundle(version: string, failing: string[] = [], extra: BundleEntry[] = [], sleepIn?: { hook: string; seconds: number }): Promise<Buffer> {
  const hooks = ["stop", "before_install", "after_install", "start", "validate"];
  const manifest = `version: 1\nhooks:\n${hooks.map((h) => `  ${h}: { run: hooks/${h}.sh, timeout: 30s }`).join("\n")}\nkeep_releases: 2\n`;
  return makeBundle([
    { name: "deploy.yaml", content: manifest },
    { name: "app/VERSION", content: version },
    ...hooks.map((h) => ({
      name: `hooks/${h}.sh`,
      mode: 0o755,
      content: script(
        `echo "${h} ${version} $DEPLOY_ID $DEPLOY_RELEASE $DEPLOY_HOOK_CONTEXT $(basename "$PWD")" >> "$(dirname "$DEPLOY_RELEASE_DIR")/../hooks.log"\necho "running ${h}"\n` +
          (sleepIn?.hook === h ? `sleep ${sleepIn.seconds}\n` : "") +
          (failing.includes(h) ? `echo "${h} failed" >&2\nexit 3\n` : "exit 0\n"),
      ),
    })),
    ...extra,
  ]);
}

async function hookLog(stack: Stack, agent: string): Promise<string[]> {
  const text = await readFile(join(stack.rootOf(agent), "web", "hooks.log"), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean);
}

async function current(stack: Stack, agent: string): Promise<string | undefined> {
  return readlink(join(stack.rootOf(agent), "web", "current")).catch(() => undefined);
}

/** Polls `cond` every `everyMs` until it holds; throws `failure` after `timeoutMs`. */
async function pollUntil(failure: string, timeoutMs: number, everyMs: number, cond: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(failure);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe("bundles", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["b1", "b2"] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("uploads a bundle once (identical content is a no-op) and lists it", async () => {
    const client = stack.client();
    const data = await bundle("v0");
    const a = await client.upload("web", data);
    expect(a).toMatchObject({ name: "web", digest: sha(data), size: String(data.length) });
    expect(a.hooks).toEqual(["stop", "before_install", "after_install", "start", "validate"]);
    const again = await client.upload("web", data, sha(data));
    expect(again.digest).toBe(a.digest);
    expect((await client.getArtifact("web", a.digest)).size).toBe(String(data.length));
    const listed = (await client.listArtifacts("web")).artifacts ?? [];
    expect(listed.filter((x) => x.digest === a.digest)).toHaveLength(1);
  });

  it.each([
    ["not gzip", Buffer.from("hello, not a bundle"), /gzip|tar/i],
    ["path traversal", undefined, /\.\./],
    ["missing deploy.yaml", undefined, /deploy\.yaml/],
  ])("refuses a bad bundle at upload (%s) with INVALID_ARGUMENT", async (what, raw, message) => {
    const client = stack.client();
    const data =
      raw ??
      (what === "path traversal"
        ? await makeBundle([{ name: "deploy.yaml", content: "version: 1\n" }, { name: "../evil", content: "x" }])
        : await makeBundle([{ name: "app/x", content: "x" }]));
    const err = (await client.upload("web", data).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
    expect(((await client.listArtifacts("web")).artifacts ?? []).map((x) => x.digest)).not.toContain(sha(data));
  });

  it("refuses an upload whose content does not have the announced digest", async () => {
    const client = stack.client();
    const data = await bundle("v-dig");
    const err = (await client.upload("web", data, `sha256:${"0".repeat(64)}`).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/header\.digest/);
  });

  it("a changeset naming an artifact that is not stored → FAILED_PRECONDITION", async () => {
    const client = stack.client();
    const err = (await client
      .create({ requestId: "missing-art", app: "web", environment: "prod", changeset: { version: "v9", artifact: { name: "web", digest: `sha256:${"a".repeat(64)}` } } })
      .catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/changeset\.artifact/);
  });

  it("installs releases with hooks in order, switches current, rolls back a failed validate, prunes", async () => {
    const client = stack.client();
    const deploy = async (version: string, failing: string[] = []): Promise<{ id: string; state: string; targets: { agentId?: string; state?: string; message?: string; rolledBack?: boolean }[] }> => {
      const data = await bundle(version, failing);
      const a = await client.upload("web", data);
      const d = await client.create({ requestId: `inst-${version}`, app: "web", environment: "prod", changeset: { version, artifact: { name: "web", digest: a.digest } }, strategy: { maxConcurrency: 2 } });
      const done = await client.waitTerminal(d.id!);
      return { id: d.id!, state: done.state!, targets: done.targets ?? [] };
    };

    const v1 = await deploy("v1");
    expect(v1.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const agent of ["b1", "b2"]) {
      expect(await current(stack, agent)).toBe(`releases/v1-${v1.id.slice(-8)}`);
      // first release: no stop hook (nothing was current)
      expect((await hookLog(stack, agent)).map((l) => l.split(" ")[0])).toEqual(["before_install", "after_install", "start", "validate"]);
    }

    const v2 = await deploy("v2", ["validate"]);
    expect(v2.state).toBe("DEPLOYMENT_STATE_FAILED");
    for (const t of v2.targets) {
      expect(t.state).toBe("TARGET_STATE_FAILED");
      expect(t.rolledBack).toBe(true);
      expect(t.message).toMatch(/validate hook failed.*rolled back/);
    }
    for (const agent of ["b1", "b2"]) {
      expect(await current(stack, agent)).toBe(`releases/v1-${v1.id.slice(-8)}`);
      const hooks = (await hookLog(stack, agent)).slice(4).map((l) => l.split(" ").slice(0, 2).join(" "));
      // v2's install hooks, v1's stop, v2's start+validate, then v1's start again
      expect(hooks).toEqual(["before_install v2", "after_install v2", "stop v1", "start v2", "validate v2", "start v1"]);
      // each hook runs in, and is told about, its own release
      const v1name = `v1-${v1.id.slice(-8)}`;
      const lines = (await hookLog(stack, agent)).slice(4).map((l) => l.split(" "));
      expect(lines[2]!.slice(3)).toEqual([v1name, "stop-previous", v1name]);
      expect(lines[5]!.slice(3)).toEqual([v1name, "rollback", v1name]);
      expect(lines[3]!.slice(3)).toEqual([`v2-${v2.id.slice(-8)}`, "install", `v2-${v2.id.slice(-8)}`]);
    }

    const v3 = await deploy("v3");
    const v4 = await deploy("v4");
    expect([v3.state, v4.state]).toEqual(["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_SUCCEEDED"]);
    for (const agent of ["b1", "b2"]) {
      expect(await current(stack, agent)).toBe(`releases/v4-${v4.id.slice(-8)}`);
      // keep_releases 2: current and previous are kept, older ones pruned
      const releases = (await readdir(join(stack.rootOf(agent), "web", "releases"))).sort();
      expect(releases).toEqual([`v3-${v3.id.slice(-8)}`, `v4-${v4.id.slice(-8)}`].sort());
    }
    // The registry is a watch of deploy_agents: allow it a moment to see the last heartbeat.
    const want = `v4-${v4.id.slice(-8)}`;
    const until = Date.now() + 5000;
    let agents = await client.agents({ app: "web" });
    while (agents.agents.some((a) => a.currentReleases.web !== want) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      agents = await client.agents({ app: "web" });
    }
    for (const a of agents.agents) expect(a.currentReleases.web).toBe(want);
  });

  it("an agent SIGKILLed during a hook: after restart current is a complete release and nothing runs again", async () => {
    const client = stack.client();
    const data = await bundle("v5", [], [], { hook: "after_install", seconds: 5 });
    const a = await client.upload("web", data);
    const before = await current(stack, "b1");
    const d = await client.create({
      requestId: "kill-hook",
      app: "web",
      environment: "prod",
      changeset: { version: "v5", artifact: { name: "web", digest: a.digest } },
      targets: ["b1"],
    });
    await pollUntil("after_install never started", 20_000, 100, async () => (await hookLog(stack, "b1")).some((l) => l.startsWith("after_install v5")));
    await stack.agent("b1").kill("SIGKILL");
    await stack.startAgent("b1");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/interrupted/);
    // the switch never happened: current still points at the previous complete release
    expect(await current(stack, "b1")).toBe(before);
    await readFile(join(stack.rootOf("b1"), "web", before!, "app", "VERSION"), "utf8");
    await new Promise((r) => setTimeout(r, 1000));
    expect((await hookLog(stack, "b1")).filter((l) => l.includes(d.id!) && l.startsWith("before_install"))).toHaveLength(1);
  });

  it("an agent SIGKILLed mid-unpack: after restart current is unchanged, nothing runs, the partial release is cleaned up", async () => {
    const client = stack.client();
    // ~24 MB of random bytes: incompressible, so the unpack takes a moment.
    const data = await makeBundle([
      { name: "deploy.yaml", content: "version: 1\nhooks:\n  before_install: { run: hooks/bi.sh }\nkeep_releases: 2\n" },
      { name: "hooks/bi.sh", mode: 0o755, content: script(`echo "before_install unpack $DEPLOY_ID" >> "$(dirname "$DEPLOY_RELEASE_DIR")/../hooks.log"`) },
      ...Array.from({ length: 24 }, (_, i) => ({ name: `blob/${i}.bin`, content: randomBytes(1024 * 1024) })),
    ]);
    const a = await client.upload("web", data);
    const before = await current(stack, "b2");
    const d = await client.create({
      requestId: "kill-unpack",
      app: "web",
      environment: "prod",
      changeset: { version: "v6", artifact: { name: "web", digest: a.digest } },
      targets: ["b2"],
    });
    const releases = join(stack.rootOf("b2"), "web", "releases");
    await pollUntil("the unpack was never seen in progress", 30_000, 5, async () => (await readdir(releases).catch(() => [] as string[])).some((n) => n.includes(".partial-")));
    await stack.agent("b2").kill("SIGKILL");
    await stack.startAgent("b2");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/interrupted/);
    expect(await current(stack, "b2")).toBe(before);
    expect((await hookLog(stack, "b2")).filter((l) => l.includes(d.id!))).toEqual([]);
    // the next install removes what the crash left behind, and a download a crash cut short
    const artifacts = join(stack.dir, "state", "b2", "artifacts");
    const stalePart = join(artifacts, `${"0".repeat(64)}.tar.gz.part-0badc0de`);
    await writeFile(stalePart, randomBytes(1024));
    const next = await bundle("v7");
    const n = await client.upload("web", next);
    const d2 = await client.create({ requestId: "after-unpack-kill", app: "web", environment: "prod", changeset: { version: "v7", artifact: { name: "web", digest: n.digest } }, targets: ["b2"] });
    expect((await client.waitTerminal(d2.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect((await readdir(releases)).filter((x) => x.includes(".partial-"))).toEqual([]);
    expect((await readdir(artifacts)).filter((x) => x.includes(".part-"))).toEqual([]);
  });
});

describe("strategy.ignore_stop_failures", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["s1"] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("a release in place with a broken stop hook fails every deploy after it, except one that ignores stop failures", async () => {
    const client = stack.client();
    const deploy = async (version: string, failing: string[], strategy: object = {}): Promise<{ state: string; message: string; targetMessage: string; ignore: boolean }> => {
      const a = await client.upload("web", await bundle(version, failing));
      const d = await client.create({ requestId: `stop-${version}-${randomBytes(4).toString("hex")}`, app: "web", environment: "prod", changeset: { version, artifact: { name: "web", digest: a.digest } }, strategy });
      const done = await client.waitTerminal(d.id!);
      return { state: done.state!, message: done.message ?? "", targetMessage: done.targets?.[0]?.message ?? "", ignore: done.strategy?.ignoreStopFailures === true };
    };
    expect((await deploy("v1", ["stop"])).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const blocked = await deploy("v2", []);
    expect(blocked.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(blocked.targetMessage).toMatch(/^stop hook of release v1-\w+ failed: exit code 3/);
    const through = await deploy("v2", [], { ignoreStopFailures: true });
    expect(through.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(through.ignore).toBe(true);
    expect(through.targetMessage).toMatch(/^release v2-\w+ is current; the stop hook of release v1-\w+ failed: exit code 3 .*, ignored \(ignore_stop_failures\)$/);
  });

  it("an agent stopped (SIGTERM) mid-install past its grace goes back to the previous release and starts it before it exits", async () => {
    const client = stack.client();
    // s1 again, with a grace of half a second; v2 is current.
    await stack.agent("s1").kill("SIGKILL");
    await stack.startAgent("s1", { env: { DEPLOY_AGENT_SHUTDOWN_GRACE_MS: "500" } });
    const before = await current(stack, "s1");
    const a = await client.upload("web", await bundle("v9", [], [], { hook: "validate", seconds: 30 }));
    const d = await client.create({ requestId: "term-mid-install", app: "web", environment: "prod", changeset: { version: "v9", artifact: { name: "web", digest: a.digest } }, targets: ["s1"] });
    await pollUntil("validate never started", 20_000, 100, async () => (await hookLog(stack, "s1")).some((l) => l.startsWith(`validate v9 ${d.id!}`)));
    // The stop hook of the release in place has run: without the way back, the app would stay stopped.
    await stack.agent("s1").kill("SIGTERM");
    const log = await hookLog(stack, "s1");
    const after = log.slice(log.findIndex((l) => l.startsWith(`validate v9 ${d.id!}`)) + 1);
    expect(after, log.join("\n")).toEqual([expect.stringMatching(new RegExp(`^start v2 ${d.id!} \\S+ rollback `))]);
    expect(await current(stack, "s1")).toBe(before);
    await stack.startAgent("s1");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
  });

  it("an agent SIGKILLed mid-install after the switch goes back to the previous release at its restart and starts it", async () => {
    const client = stack.client();
    const before = await current(stack, "s1");
    const a = await client.upload("web", await bundle("v10", [], [], { hook: "validate", seconds: 30 }));
    const d = await client.create({ requestId: "kill-mid-install", app: "web", environment: "prod", changeset: { version: "v10", artifact: { name: "web", digest: a.digest } }, targets: ["s1"] });
    await pollUntil("validate never started", 20_000, 100, async () => (await hookLog(stack, "s1")).some((l) => l.startsWith(`validate v10 ${d.id!}`)));
    await stack.agent("s1").kill("SIGKILL");
    // The crash left the new release current and the previous one stopped.
    expect(await current(stack, "s1")).not.toBe(before);
    await stack.startAgent("s1");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/^interrupted: the agent restarted during the apply; not run again; rolled back to v2-\w+ and ran its start hook$/);
    expect(await current(stack, "s1")).toBe(before);
    const log = await hookLog(stack, "s1");
    const after = log.slice(log.findIndex((l) => l.startsWith(`validate v10 ${d.id!}`)) + 1);
    expect(after, log.join("\n")).toEqual([expect.stringMatching(new RegExp(`^start v2 ${d.id!} \\S+ rollback `))]);
  });

  it("a way back the agent's shutdown cut short (its result already journaled) is taken again at its restart", async () => {
    const previous = (await current(stack, "s1"))!.split("/")[1]!;
    await stack.agent("s1").kill("SIGKILL");
    const record = join(stack.rootOf("s1"), "web", ".install-in-progress.json");
    await writeFile(record, JSON.stringify({ schema: "deploy.install-in-progress.v1", deploymentId: "d-cut", release: "v11-cut", previous, env: { DEPLOY_ID: "d-cut" }, stage: "going-back" }));
    await stack.startAgent("s1");
    await pollUntil("the way back was not taken", 20_000, 100, async () => (await hookLog(stack, "s1")).some((l) => l.startsWith("start v2 d-cut")));
    expect((await hookLog(stack, "s1")).at(-1)).toMatch(new RegExp(`^start v2 d-cut ${previous} rollback `));
    await pollUntil("the record is still there", 5_000, 50, async () => !(await readFile(record).then(() => true, () => false)));
  });

  it("an agent killed after a successful install and before its result's record goes back at its restart: the result and current agree", async () => {
    const client = stack.client();
    const record = join(stack.rootOf("s1"), "web", ".install-in-progress.json");
    // A success forgets its record of the install in progress once journaled.
    const ok = await client.upload("web", await bundle("v12"));
    const d0 = await client.create({ requestId: "ok-before-kill", app: "web", environment: "prod", changeset: { version: "v12", artifact: { name: "web", digest: ok.digest } }, targets: ["s1"] });
    expect((await client.waitTerminal(d0.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const before = await current(stack, "s1");
    expect(before).toBe(`releases/v12-${d0.id!.slice(-8)}`);
    expect(await readFile(record).then(() => true, () => false)).toBe(false);

    await stack.agent("s1").kill("SIGKILL");
    await stack.startAgent("s1", { env: { DEPLOY_AGENT_FAULT_KILL_BEFORE_RESULT: "1" } });
    const a = await client.upload("web", await bundle("v13"));
    const d = await client.create({ requestId: "kill-before-result", app: "web", environment: "prod", changeset: { version: "v13", artifact: { name: "web", digest: a.digest } }, targets: ["s1"] });
    // Killed with every hook run and the new release current; its record of the install still there.
    await pollUntil("the agent did not kill itself", 20_000, 100, () => Promise.resolve(!stack.agent("s1").running));
    expect(await current(stack, "s1")).toBe(`releases/v13-${d.id!.slice(-8)}`);
    expect(await readFile(record).then(() => true, () => false)).toBe(true);
    await stack.startAgent("s1");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(new RegExp(`^interrupted: the agent restarted during the apply; not run again; rolled back to v12-${d0.id!.slice(-8)} and ran its start hook$`));
    expect(await current(stack, "s1")).toBe(before);
    expect(await readFile(record).then(() => true, () => false)).toBe(false);
  });
});
