// The README's "Inspect with the nats CLI" commands, run with the pinned nats
// CLI (natscli v0.5.0, scripts/tools.sh) against a real stack after one
// bundle deployment reached SUCCEEDED: each command must work as printed and
// show what the README's "JetStream layout" table says is there.
//
// Two of them depend on how they are run, and this file pins that down:
// - `stream view` is an interactive pager: without a terminal it refuses
//   ("interactive stream paging requires a valid terminal"), and at the end of
//   each full page (10 messages by default) it asks "Next Page?". So it runs
//   here in a pseudo-terminal (util-linux `script`) over fewer events than a
//   page, and `nats sub --stream … --all -T` is checked as the equivalent for
//   scripts.
// - `kv get` without `--raw` prints only the first 120 bytes of a value; a
//   deployment record (~1 KB) is cut before its state, so the record's content
//   is checked with `--raw`.
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import { makeBundle, script } from "./helpers/bundles.js";
import { Stack } from "./helpers/stack.js";

const AGENT = "a1";
const CLI_TIMEOUT_MS = 30_000;

interface CliResult {
  /** The command line as a user would type it. */
  command: string;
  /** Exit code; null when killed (e.g. by the timeout). */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** The command and everything it printed, for failure messages. */
const shown = (r: CliResult): string =>
  `$ ${r.command}\nexit ${r.code ?? `signal ${r.signal}`}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

let stack: Stack;
/** Home for the CLI: no user's nats contexts (~/.config/nats) leak into the commands. */
let cliHome: string;

function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("NATS_")) env[k] = v;
  return { ...env, HOME: cliHome, XDG_CONFIG_HOME: join(cliHome, ".config") };
}

function run(file: string, args: string[], command: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: CLI_TIMEOUT_MS, env: cliEnv(), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string | null }) | null;
      resolve({ command, code: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
    // No input: a command that would prompt gets EOF at once instead of waiting.
    child.stdin?.end();
  });
}

/** `nats --server <the stack's NATS> …args`, without a terminal (as in a script). */
function nats(args: string[]): Promise<CliResult> {
  const full = ["--server", stack.nats.url, ...args];
  return run(toolPath("nats"), full, ["nats", ...full].join(" "));
}

/** The same, in a pseudo-terminal (util-linux `script`), as a user at a shell runs it. */
async function natsInTerminal(args: string[]): Promise<CliResult> {
  const full = ["--server", stack.nats.url, ...args];
  const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  const r = await run("script", ["-qec", [toolPath("nats"), ...full].map(quote).join(" "), "/dev/null"], ["nats", ...full].join(" "));
  // The terminal turns each \n into \r\n, and stderr arrives on stdout.
  return { ...r, stdout: r.stdout.replaceAll("\r\n", "\n") };
}

const hasUtilLinuxScript = ((): boolean => {
  try {
    return execFileSync("script", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).includes("util-linux");
  } catch {
    return false;
  }
})();

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** A "Label: value" line of the CLI's human output (labels are right-aligned). */
const line = (label: string, value: string): RegExp => new RegExp(`^\\s*${escapeRe(label)}: ${escapeRe(value)}\\s*$`, "m");

describe("the nats CLI commands printed in the README", () => {
  let deploymentId = "";
  let objectName = "";
  /** `kv get deploy_deployments active.web.prod`, as printed and with --raw, while the deployment was running. */
  let lockWhileActive: CliResult[] = [];

  beforeAll(async () => {
    cliHome = await mkdtemp(join(tmpdir(), "nats-cli-home-"));
    // A liveness window of 15 s (the default), not the stack's 3 s: this
    // test asserts the deployment SUCCEEDED, and with 3 s the start lease
    // (0.9 of it) was once shorter than the race's reply took on a loaded
    // 2-core VM running the whole suite (2,763 ms against 2,700 ms: the
    // agent declined, as it must). Nothing here times liveness.
    stack = await Stack.start({ agents: [AGENT], coordinatorEnv: { DEPLOY_AGENT_LIVE_MS: "15000" } });
    expect(stack.nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);

    // The start hook waits for a gate file, so the lock can be looked at while
    // the deployment is certainly active (100 s bound so a broken test cannot hang it).
    const gate = join(stack.dir, "gate");
    const bundle = await makeBundle([
      { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: hooks/start.sh, timeout: 120s }\n" },
      {
        name: "hooks/start.sh",
        mode: 0o755,
        content: script(`for _ in $(seq 1 1000); do [ -f ${JSON.stringify(gate)} ] && exit 0; sleep 0.1; done\necho "gate never opened" >&2\nexit 1`),
      },
    ]);
    const client = stack.client();
    const artifact = await client.upload(stack.app, bundle);
    objectName = `${artifact.name}@${artifact.digest}`;
    const d = await client.create({
      requestId: "nats-cli-1",
      app: stack.app,
      environment: stack.environment,
      changeset: { version: "v1", artifact: { name: artifact.name, digest: artifact.digest } },
    });
    deploymentId = d.id!;
    try {
      lockWhileActive = [
        await nats(["kv", "get", "deploy_deployments", "active.web.prod"]),
        await nats(["kv", "get", "--raw", "deploy_deployments", "active.web.prod"]),
      ];
    } finally {
      await writeFile(gate, "1");
    }
    const done = await client.waitTerminal(deploymentId);
    expect(done.state, JSON.stringify(done)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  afterAll(async () => {
    await stack?.stop();
    if (cliHome) await rm(cliHome, { recursive: true, force: true });
  });

  it("stream ls and kv ls: each stream and bucket says what it holds", async () => {
    const streams = await nats(["stream", "ls"]);
    expect(streams.code, shown(streams)).toBe(0);
    expect(streams.stdout, shown(streams)).toMatch(/│ DEPLOY_COMMANDS\s*│ nats-deploy commands, one per target: deploy\.cmd\.<agent>\.queue\s*│/);
    expect(streams.stdout, shown(streams)).toMatch(/│ DEPLOY_EVENTS\s*│ nats-deploy events, the source of truth: deploy\.evt\.<deployment>\.<source>\s*│/);
    const buckets = await nats(["kv", "ls"]);
    expect(buckets.code, shown(buckets)).toBe(0);
    for (const [bucket, what] of <[string, string][]>[
      ["deploy_deployments", "nats-deploy deployments"],
      ["deploy_agents", "nats-deploy agents"],
      ["deploy_releases", "nats-deploy desired release of each <app>.<environment>"],
      ["deploy_cordons", "nats-deploy cordoned agents, by agent id"],
      ["deploy_freezes", "nats-deploy environment freezes, by environment"],
      ["deploy_policies", "nats-deploy environment policies, by environment"],
    ]) {
      expect(buckets.stdout, shown(buckets)).toMatch(new RegExp(`│ ${bucket}\\s*│ ${escapeRe(what)}`));
    }
  });

  it("stream info DEPLOY_COMMANDS: subjects deploy.cmd.>, no limit per subject (an agent's queue holds its commands), file storage, max age", async () => {
    const r = await nats(["stream", "info", "DEPLOY_COMMANDS"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(line("Subjects", "deploy.cmd.>"));
    expect(r.stdout, shown(r)).toMatch(line("Storage", "File"));
    expect(r.stdout, shown(r)).toMatch(line("Discard Policy", "New"));
    expect(r.stdout, shown(r)).not.toMatch(/Maximum Per Subject: 1\b/);
    expect(r.stdout, shown(r)).toMatch(/^\s*Maximum Age: \d+d/m); // streams.commandsMaxAgeMs, days by default
    expect(r.stdout, shown(r)).toMatch(line("Messages", "1"));
  });

  it("stream info DEPLOY_EVENTS: subjects deploy.evt.>, kept 90 days, 256 KiB messages, 100,000 per subject", async () => {
    const r = await nats(["stream", "info", "DEPLOY_EVENTS"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(line("Subjects", "deploy.evt.>"));
    expect(r.stdout, shown(r)).toMatch(line("Storage", "File"));
    expect(r.stdout, shown(r)).toMatch(/^\s*Maximum Age: 90d/m); // streams.eventsMaxAgeMs: 90 days by default
    expect(r.stdout, shown(r)).toMatch(line("Maximum Message Size", "256 KiB"));
    expect(r.stdout, shown(r)).toMatch(line("Maximum Per Subject", "100,000"));
  });

  it("stream subjects DEPLOY_COMMANDS: the agent's command on its queue, deploy.cmd.<agent>.queue", async () => {
    const r = await nats(["stream", "subjects", "DEPLOY_COMMANDS"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`\\bdeploy\\.cmd\\.${AGENT}\\.queue\\s*│\\s*1\\s*│`));
  });

  it("stream subjects DEPLOY_EVENTS: deploy.evt.<deployment>.<source> for the coordinator and the agent", async () => {
    const r = await nats(["stream", "subjects", "DEPLOY_EVENTS"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toContain(`deploy.evt.${deploymentId}.coordinator`);
    expect(r.stdout, shown(r)).toContain(`deploy.evt.${deploymentId}.${AGENT}`);
  });

  it("stream view DEPLOY_EVENTS, as printed, refuses to run without a terminal", async () => {
    const r = await nats(["stream", "view", "DEPLOY_EVENTS", "25"]);
    expect(r.code, shown(r)).toBe(1);
    expect(r.stderr, shown(r)).toContain("interactive stream paging requires a valid terminal");
  });

  it.skipIf(!hasUtilLinuxScript)("stream view DEPLOY_EVENTS, as printed, in a terminal: every event with its subject, headers and schema", async () => {
    // Fewer events than the page size the README prints (25), so the pager never asks "Next Page?".
    const info = await nats(["stream", "info", "--json", "DEPLOY_EVENTS"]);
    expect(info.code, shown(info)).toBe(0);
    const events = (JSON.parse(info.stdout) as { state: { messages: number } }).state.messages;
    expect(events, `this test needs fewer than 25 events for one page\n${shown(info)}`).toBeLessThan(25);

    const r = await natsInTerminal(["stream", "view", "DEPLOY_EVENTS", "25"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toContain(`[1] Subject: deploy.evt.${deploymentId}.coordinator Received:`);
    expect(r.stdout, shown(r)).toContain(`Subject: deploy.evt.${deploymentId}.${AGENT} Received:`);
    expect(r.stdout, shown(r)).toContain(`[${events}] Subject: deploy.evt.${deploymentId}.coordinator Received:`);
    expect(r.stdout, shown(r)).toContain("Content-Type: application/json; schema=deploy.event.v1");
    expect(r.stdout, shown(r)).toContain("Deploy-Event: deployment.created");
    expect(r.stdout, shown(r)).toContain("Deploy-Event: deployment.finished");
    expect(r.stdout, shown(r)).toContain(`Deploy-Id: ${deploymentId}`);
    expect(r.stdout, shown(r)).toMatch(/"schema":\s*"deploy\.event\.v1"/);
    expect(r.stdout, shown(r)).toContain("Reached apparent end of data");
  });

  it("without a terminal, `sub --stream DEPLOY_EVENTS --all -T` prints the same events and exits", async () => {
    const r = await nats(["sub", "--stream", "DEPLOY_EVENTS", "--all", "--terminate-at-end", "deploy.evt.>"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`seq: 1 / pending: \\d+ / subject: deploy\\.evt\\.${escapeRe(deploymentId)}\\.coordinator`));
    expect(r.stdout, shown(r)).toContain(`subject: deploy.evt.${deploymentId}.${AGENT}`);
    expect(r.stdout, shown(r)).toContain("Content-Type: application/json; schema=deploy.event.v1");
    expect(r.stdout, shown(r)).toContain('"type":"deployment.finished","state":"SUCCEEDED"');
  });

  it("kv ls deploy_deployments: the deployment id, its request key and its list index entry; no lock once it finished", async () => {
    const r = await nats(["kv", "ls", "deploy_deployments"]);
    expect(r.code, shown(r)).toBe(0);
    const keys = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
    expect(keys, shown(r)).toContain(deploymentId);
    expect(keys, shown(r)).toContain(`idx.${stack.app}.${stack.environment}.${deploymentId}`);
    expect(keys.filter((k) => /^req\.[0-9a-f]{40}$/.test(k)), shown(r)).toHaveLength(1);
    expect(keys.filter((k) => k.startsWith("active.")), shown(r)).toEqual([]);
  });

  it("kv get deploy_deployments <deployment_id>: the deploy.deployment.v1 record (as printed cut at 120 bytes; --raw is the whole record, SUCCEEDED)", async () => {
    const r = await nats(["kv", "get", "deploy_deployments", deploymentId]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`^deploy_deployments > ${escapeRe(deploymentId)} revision: \\d+`, "m"));
    expect(r.stdout, shown(r)).toContain(`{"schema":"deploy.deployment.v1","spec":{"id":"${deploymentId}"`);
    // What the README leaves out: the CLI shows only a prefix of the value.
    expect(r.stdout, shown(r)).toMatch(/Showing first 120 bytes of [\d,]+, use --raw for full data/);

    const raw = await nats(["kv", "get", "--raw", "deploy_deployments", deploymentId]);
    expect(raw.code, shown(raw)).toBe(0);
    const rec = JSON.parse(raw.stdout) as { schema: string; spec: { id: string; app: string; environment: string; targets: string[] }; state: string; targets: Record<string, { state: string }> };
    expect(rec.schema, shown(raw)).toBe("deploy.deployment.v1");
    expect(rec.spec, shown(raw)).toMatchObject({ id: deploymentId, app: stack.app, environment: stack.environment, targets: [AGENT] });
    expect(rec.state, shown(raw)).toBe("SUCCEEDED");
    expect(rec.targets[AGENT]?.state, shown(raw)).toBe("SUCCEEDED");
  });

  it("kv get deploy_deployments active.web.prod: the deployment id while it is active; `key not found` (exit 1) once it finished", async () => {
    const [printed, raw] = lockWhileActive;
    expect(printed!.code, shown(printed!)).toBe(0);
    expect(printed!.stdout, shown(printed!)).toMatch(/^deploy_deployments > active\.web\.prod revision: \d+/m);
    expect(printed!.stdout, shown(printed!)).toContain(`"deploymentId":"${deploymentId}"`);
    expect(raw!.code, shown(raw!)).toBe(0);
    expect(JSON.parse(raw!.stdout), shown(raw!)).toMatchObject({ deploymentId, requestKey: expect.stringMatching(/^req\.[0-9a-f]{40}$/) as unknown });

    // Terminal: the key is purged, so the CLI reports it missing, as it would
    // for a key that never existed; that is the expected answer, not a failure.
    const after = await nats(["kv", "get", "deploy_deployments", "active.web.prod"]);
    expect(after.code, shown(after)).toBe(1);
    expect(after.stdout, shown(after)).toBe("");
    expect(after.stderr, shown(after)).toContain("nats: error: nats: key not found");
  });

  it("kv get deploy_agents <agent_id>: the deploy.agent.v1 registry entry", async () => {
    const r = await nats(["kv", "get", "deploy_agents", AGENT]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`^deploy_agents > ${AGENT} revision: \\d+`, "m"));
    expect(r.stdout, shown(r)).toContain(`{"schema":"deploy.agent.v1","id":"${AGENT}"`);

    const raw = await nats(["kv", "get", "--raw", "deploy_agents", AGENT]);
    expect(raw.code, shown(raw)).toBe(0);
    const rec = JSON.parse(raw.stdout) as Record<string, unknown>;
    expect(rec, shown(raw)).toMatchObject({ schema: "deploy.agent.v1", id: AGENT, environment: stack.environment, apps: [stack.app] });
    for (const field of ["host", "version", "labels", "currentReleases"]) expect(rec, shown(raw)).toHaveProperty(field);
  });

  it("sub 'deploy.hb.*': idle agents' heartbeats, core NATS messages stored in no stream", async () => {
    const r = await nats(["sub", "--count", "2", "deploy.hb.*"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout + r.stderr, shown(r)).toMatch(/Received on "deploy\.hb\.[\w-]+"/);
  });

  it("sub deploy.hb-request: the coordinators' requests to every agent (a starting coordinator asks for a heartbeat)", async () => {
    const sub = nats(["sub", "--count", "1", "deploy.hb-request"]);
    // Started after the CLI has subscribed: a second coordinator, stopped again.
    await new Promise((r) => setTimeout(r, 1000));
    const second = await stack.startCoordinator();
    const r = await sub;
    await second.stop();
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout + r.stderr, shown(r)).toMatch(/Received on "deploy\.hb-request"/);
  });

  it("consumer info DEPLOY_COMMANDS agent-<agent_id>: pull consumer filtered on deploy.cmd.<agent>.queue, deliver all, one at a time", async () => {
    const r = await nats(["consumer", "info", "DEPLOY_COMMANDS", `agent-${AGENT}`]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toContain(`Information for Consumer DEPLOY_COMMANDS > agent-${AGENT}`);
    expect(r.stdout, shown(r)).toMatch(line("Pull Mode", "true"));
    expect(r.stdout, shown(r)).toMatch(line("Filter Subject", `deploy.cmd.${AGENT}.queue`));
    expect(r.stdout, shown(r)).toMatch(line("Deliver Policy", "All"));
    expect(r.stdout, shown(r)).toMatch(line("Ack Policy", "Explicit"));
    expect(r.stdout, shown(r)).toMatch(line("Ack Wait", "5.00s")); // the stack's DEPLOY_AGENT_ACK_WAIT_MS
    expect(r.stdout, shown(r)).toMatch(line("Max Ack Pending", "1"));
  });

  it("consumer info DEPLOY_EVENTS coordinator: filter deploy.evt.>, ack none (the sweep makes up a lost wake), deliver new", async () => {
    const r = await nats(["consumer", "info", "DEPLOY_EVENTS", "coordinator"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toContain("Information for Consumer DEPLOY_EVENTS > coordinator");
    expect(r.stdout, shown(r)).toMatch(line("Filter Subject", "deploy.evt.>"));
    expect(r.stdout, shown(r)).toMatch(line("Deliver Policy", "New"));
    expect(r.stdout, shown(r)).toMatch(line("Ack Policy", "None"));
  });

  it("object ls deploy_artifacts_web: the uploaded bundle as <name>@sha256:<hex>", async () => {
    expect(objectName).toMatch(/^web@sha256:[0-9a-f]{64}$/);
    const r = await nats(["object", "ls", "deploy_artifacts_web"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`│ ${escapeRe(objectName)}\\s*│`));
  });

  it("object get deploy_artifacts_web <name>: the bundle, its object digest checked by the CLI", async () => {
    // The coordinator computes the object store's digest with node:crypto
    // (artifactStore.ts): the Go client checks it as it reads.
    const out = join(cliHome, "bundle.tar.gz");
    const r = await nats(["object", "get", "deploy_artifacts_web", objectName, "--output", out, "--no-progress", "--force"]);
    expect(r.code, shown(r)).toBe(0);
    const digest = createHash("sha256").update(await readFile(out)).digest("hex");
    expect(`web@sha256:${digest}`).toBe(objectName);
  });
});
