// deployctl through pipes, as scripts use it: --json prints one proto3 JSON
// document per command; a reader that goes away (| head) ends deployctl
// quietly; deploy without a bundle (each agent's deploy executable); the
// agents are checked before anything is uploaded; agents' labels; usage
// errors and help name the command. The BUILT CLI against a real stack.
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, DURATION, HELLO, RFC3339, STACK_LINE, gatedBundle, runCli, shQuote, startShell, walk, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

type Json = Record<string, unknown>;

const TIME_KEYS = new Set(["createdAt", "updatedAt", "finishedAt", "dispatchedAt", "startedAt", "time", "lastHeartbeat", "promoteAt"]);
const DURATION_KEYS = new Set(["deliveryTimeout", "applyTimeout", "maxPause", "canarySoak"]);
const INT64_KEYS = new Set(["lastSequence", "sequence", "size"]);

/** The canonical proto3 JSON mapping, checked on every value of a document. */
function expectProto3Json(doc: unknown): void {
  let times = 0;
  for (const [path, v] of walk(doc)) {
    const key = path.slice(path.lastIndexOf(".") + 1);
    expect(key, path).not.toMatch(/^_|_[a-z]/); // lowerCamelCase, no proto-loader oneof markers
    if (v !== null && typeof v === "object" && !Array.isArray(v)) expect(Object.keys(v), path).not.toContain("seconds");
    if (TIME_KEYS.has(key)) {
      expect(v, path).toMatch(RFC3339);
      times++;
    }
    if (DURATION_KEYS.has(key)) expect(v, path).toMatch(DURATION);
    if (INT64_KEYS.has(key)) expect(typeof v, path).toBe("string");
    if (key === "state" || key === "targetState" || key === "deploymentState") expect(v, path).toMatch(/^(DEPLOYMENT|TARGET)_STATE_[A-Z_]+$/);
  }
  expect(times).toBeGreaterThan(0);
}

/** The whole of stdout as one JSON document. */
function parseDocument(r: CliResult): Json {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Json;
}

function expectQuietEnd(r: CliResult, what: string): void {
  expect(r.stderr, what).not.toContain("EPIPE");
  expect(r.stderr, what).not.toMatch(STACK_LINE);
  expect(r.code, `${what}: ${r.stderr}`).toBe(141);
}

describe("deployctl through pipes", () => {
  let stack: Stack;
  let work: string;
  let env: Record<string, string>;
  const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => runCli(args, { env: { ...env, ...extraEnv } });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-pipes-"));
    stack = await Stack.start({ agents: ["p1", "p2"], agentEnv: { DEPLOY_AGENT_LABELS: JSON.stringify({ zone: "eu-1", tier: "web" }) } });
    env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: work,
      XDG_STATE_HOME: join(work, "state"),
      DEPLOY_COORDINATOR: stack.address,
      // Where deployctl packs bundles: checked for leftovers.
      TMPDIR: join(work, "tmp"),
    };
    await mkdir(env.TMPDIR!);
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("--json: every command prints one proto3 JSON document (RFC 3339 times, durations in s, enum names, int64 strings)", async () => {
    const r = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--max-concurrency", "2", "--json"]);
    const doc = parseDocument(r) as { requestId: string; artifact: Json; deployment: Json & { id: string; state: string }; events: Json[]; following: string };
    expect(Object.keys(doc).sort()).toEqual(["artifact", "deployment", "events", "following", "requestId"]);
    expect(doc.following).toBe("ended");
    expect(doc.deployment.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(doc.artifact).toMatchObject({ name: "web", hooks: ["before_install", "start", "validate"] });
    expect(doc.artifact.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const strategy = doc.deployment.strategy as Json;
    // The strategy in force: max_pause is always filled in (24 h by default).
    expect(Object.keys(strategy)).toEqual(["maxConcurrency", "maxFailures", "deliveryTimeout", "applyTimeout", "maxPause"]);
    expect(strategy.maxPause).toBe("86400s");
    expect([strategy.maxConcurrency, strategy.maxFailures]).toEqual([2, 0]); // proto3 optional: 0 is printed
    expect(strategy.deliveryTimeout).toMatch(DURATION);
    expect(strategy.applyTimeout).toMatch(DURATION);
    expect(strategy.maxPause).toBe("86400s");
    const types = doc.events.map((e) => e.type);
    expect(types[0]).toBe("deployment.created");
    expect(types.at(-1)).toBe("deployment.finished");
    const seqs = doc.events.map((e) => Number(e.sequence));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expectProto3Json(doc);
    // People's lines went to stderr, the request id among them (before creation).
    expect(r.stderr).toContain(`request id ${doc.requestId}`);
    expect(r.stderr.indexOf("request id")).toBeLessThan(r.stderr.indexOf(`deployment ${doc.deployment.id}:`));

    const get = parseDocument(await cli(["get", doc.deployment.id, "--json"]));
    expect(get).toEqual(doc.deployment);

    const watch = parseDocument(await cli(["watch", doc.deployment.id, "--after", "0", "--json"])) as { deployment: Json; events: Json[]; following: string };
    expect(Object.keys(watch).sort()).toEqual(["deployment", "events", "following"]);
    expect(watch.following).toBe("ended");
    expect(watch.events.map((e) => e.sequence)).toEqual(doc.events.map((e) => e.sequence));
    expectProto3Json(watch);

    for (const args of [["list", "--app", "web"], ["agents"], ["artifacts", "--name", "web"], ["cancel", doc.deployment.id]]) {
      const one = parseDocument(await cli([...args, "--json"]));
      expectProto3Json(one);
    }
    const artifacts = parseDocument(await cli(["artifacts", "--json"])) as { artifacts: Json[] };
    expect(typeof artifacts.artifacts[0]!.size).toBe("string");
  });

  it("deploy --executable: no bundle, each agent runs the deploy executable configured for the app", async () => {
    const neither = await cli(["deploy", "--app", "web", "--env", "prod", "--version", "v2"]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/^deployctl: deploy needs a bundle .* or --executable/);
    const both = await cli(["deploy", HELLO, "--executable", "--app", "web", "--env", "prod", "--version", "v2"]);
    expect(both.code).toBe(2);

    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v2-exec"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/packed|uploaded/);
    const id = /deployment (d-\S+):/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain("artifact none (app's deploy executable)");
    for (const agent of ["p1", "p2"]) expect(await stack.startsOf(agent, id)).toBe(1);
    const runs = await stack.runs("p1");
    expect(runs.find((x) => x.phase === "start" && x.deploymentId === id)?.rest).toBe("v2-exec");

    const json = parseDocument(await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v3-exec", "--json"])) as {
      artifact?: Json;
      deployment: { changeset: Json; state: string };
    };
    expect(json.artifact).toBeUndefined();
    expect(json.deployment.changeset).toEqual({ version: "v3-exec" });
    expect(json.deployment.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("deploy checks the agents before uploading: none, unknown targets, none live; a --request-id retry is still answered", async () => {
    const digestOf = (r: CliResult): string => /packed .*(sha256:[0-9a-f]{64})/.exec(r.stdout)![1]!;
    const stored = async (): Promise<string[]> => {
      const doc = parseDocument(await cli(["artifacts", "--json"])) as { artifacts?: { digest: string }[] };
      return (doc.artifacts ?? []).map((a) => a.digest);
    };

    const nobody = await cli(["deploy", HELLO, "--app", "lonely", "--env", "prod", "--version", "v1"]);
    expect(nobody.code).toBe(2);
    expect(nobody.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: no agent serves app lonely in environment prod: nothing to deploy to [^\n]*\n$/);
    expect(nobody.stdout).not.toContain("uploaded");
    expect(parseDocument(await cli(["artifacts", "--name", "lonely", "--json"]))).toEqual({});

    const nowhere = await cli(["deploy", "--executable", "--app", "web", "--env", "nowhere", "--version", "v1"]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: no agent serves app web in environment nowhere/);

    // A bundle never uploaded before (its own digest), to an agent that does not exist.
    const fresh = join(work, "fresh");
    await gatedBundle(fresh, join(work, "unused-gate"));
    await writeFile(join(fresh, "index.html"), "fresh\n");
    const unknown = await cli(["deploy", fresh, "--app", "web", "--env", "prod", "--version", "v1", "--targets", "p1,nosuch"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^deployctl: INVALID_ARGUMENT: targets\[1\]: agent "nosuch" does not serve app web in environment prod/);
    expect(await stored()).not.toContain(digestOf(unknown));

    // An app served by one agent, deployed once with a request id; then the agent dies.
    const script = join(work, "solo-deploy.sh");
    await writeFile(script, "#!/bin/sh\necho deployed $DEPLOY_VERSION\n", { mode: 0o755 });
    await stack.startAgent("s1", { apps: { solo: { deploy: script } } });
    const args = ["deploy", "--executable", "--app", "solo", "--env", "prod", "--version", "v1", "--request-id", "solo-request-1"];
    const first = await cli(args);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const id = /deployment (d-\S+):/.exec(first.stdout)![1]!;
    await stack.agent("s1").kill("SIGKILL");
    for (;;) {
      const agents = parseDocument(await cli(["agents", "--app", "solo", "--json"])) as { agents: { live?: boolean }[] };
      if (!agents.agents[0]!.live) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const dead = await cli(["deploy", "--executable", "--app", "solo", "--env", "prod", "--version", "v2"]);
    expect(dead.code).toBe(2);
    expect(dead.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: no live agent serves app solo in environment prod: 1 registered \(s1\), none with a recent heartbeat\n$/);
    // The retry of the accepted request is answered with its deployment, as the request id promises.
    const retry = await cli(args);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.stdout).toContain("asking the coordinator whether request solo-request-1 was accepted before");
    expect(retry.stdout).toContain(`deployment ${id}:`);
  });

  it("agents shows each agent's labels", async () => {
    const r = await cli(["agents", "--app", "web"]);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    expect(header).toMatch(/\bLABELS\b/);
    expect(rows.length).toBe(2);
    for (const row of rows) expect(row).toMatch(/^p[12]\s.*\stier=web,zone=eu-1\s/);
    const doc = parseDocument(await cli(["agents", "--app", "web", "--json"])) as { agents: { labels: Json }[] };
    expect(doc.agents.map((a) => a.labels)).toEqual([
      { zone: "eu-1", tier: "web" },
      { zone: "eu-1", tier: "web" },
    ]);
  });

  it("usage errors point at the command's own help; every command's help has examples", async () => {
    for (const cmd of ["deploy", "watch", "get", "list", "cancel", "agents", "artifacts", "completion"]) {
      const bad = await cli([cmd, "--no-such-flag"]);
      expect(bad.code, cmd).toBe(2);
      expect(bad.stderr, cmd).toContain(`(run deployctl ${cmd} --help for usage)`);
      expect(bad.stderr, cmd).not.toContain("<command>");
      const help = await cli([cmd, "--help"]);
      expect(help.code, cmd).toBe(0);
      expect(help.stdout, cmd).toMatch(new RegExp(`Examples:\\n(.*\\n)*  \\$ deployctl ${cmd} `));
    }
    const unknown = await cli(["bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("(run deployctl --help for usage)");
  });

  it("a closed stdout ends every printing command quietly with 141", async () => {
    const id = /^(d-\S+)/m.exec((await cli(["list", "--limit", "1"])).stdout.split("\n")[1]!)![1]!;
    const printing = [
      ["get", id],
      ["get", id, "--json"],
      ["list"],
      ["list", "--json"],
      ["agents"],
      ["artifacts"],
      ["cancel", id],
      ["watch", id, "--after", "0"],
      ["watch", id, "--json"],
      ["completion", "bash"],
      ["completion", "zsh"],
      ["--help"],
      ["deploy", "--help"],
    ];
    for (const args of printing) expectQuietEnd(await runCli(args, { env, closedStdout: true }), args.join(" "));
  });

  it("`watch <id> | head -n 1` and `deploy … | head -n 1` end quietly (141); the deployment goes on", async () => {
    const gate = join(work, "gate-watch");
    const bundle = await gatedBundle(join(work, "gated-watch"), gate);
    const created = await cli(["deploy", bundle, "--app", "web", "--env", "prod", "--version", "v-head", "--detach"]);
    expect(created.code, created.stderr).toBe(0);
    const id = /deployment (d-\S+):/.exec(created.stdout)![1]!;

    // head prints the first line and exits; the deployment then moves on and
    // deployctl's next line meets a pipe without a reader.
    const watch = startShell(`node ${shQuote(CLI)} watch ${id} | head -n 1; exit "\${PIPESTATUS[0]}"`, env);
    await watch.waitFor(new RegExp(`^following ${id} `));
    await writeFile(gate, "");
    expectQuietEnd(await watch.done, "watch | head -n 1");

    // Stopping the output stopped nothing else: the deployment ends, and a
    // later watch sees it through.
    const after = await cli(["watch", id]);
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).toMatch(/deployment\.finished\s+-\s+SUCCEEDED/);

    const gate2 = join(work, "gate-deploy");
    const bundle2 = await gatedBundle(join(work, "gated-deploy"), gate2);
    const deploy = startShell(`node ${shQuote(CLI)} deploy ${shQuote(bundle2)} --app web --env prod --version v-head2 | head -n 1; exit "\${PIPESTATUS[0]}"`, env);
    await deploy.waitFor(/^packed /);
    await writeFile(gate2, "");
    expectQuietEnd(await deploy.done, "deploy | head -n 1");
    // Ending early still removed the packed bundle.
    expect(await readdir(env.TMPDIR!)).toEqual([]);
    // Whether it died before or after creating the deployment, nothing is left running.
    for (;;) {
      const running = parseDocument(await cli(["list", "--app", "web", "--state", "running", "--json"])) as { deployments?: unknown[] };
      if (!running.deployments?.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
