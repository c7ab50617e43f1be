// deployctl end to end: the BUILT CLI (dist/) run as a child process against
// a real stack (nats-server, coordinator, agents installing bundles).
import { spawn, type ChildProcess } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers/nats-server.js";
import { Proc, Stack } from "./helpers/stack.js";

const CLI = resolve(import.meta.dirname, "../dist/services/deployctl/src/main.js");
const HELLO = resolve(import.meta.dirname, "fixtures/bundles/hello");
const COORDINATOR_MAIN = resolve(import.meta.dirname, "../dist/services/coordinator/src/main.js");

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Waits until stdout matches. */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
  done: Promise<CliResult>;
}

describe("deployctl", () => {
  let stack: Stack;
  let work: string;
  let env: Record<string, string>;
  const extra: Proc[] = [];

  function startCli(args: string[], extraEnv: Record<string, string> = {}): RunningCli {
    // stdout is a pipe, not a terminal: the plain one-line-per-event view.
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const done = new Promise<CliResult>((res) => child.once("close", (code, signal) => res({ code, signal, stdout: out, stderr: err })));
    const waitFor = async (re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`deployctl exited before printing ${re}:\n${out}\n${err}`);
        if (Date.now() > until) throw new Error(`deployctl did not print ${re} in ${timeoutMs} ms:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    return { child, stdout: () => out, stderr: () => err, waitFor, done };
  }

  const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => startCli(args, extraEnv).done;

  /** A copy of the hello bundle, changed by `edit`. */
  async function bundleVariant(name: string, files: Record<string, string>): Promise<string> {
    const dir = join(work, name);
    await cp(HELLO, dir, { recursive: true });
    for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text, { mode: 0o755 });
    return dir;
  }

  const getJson = async (id: string): Promise<Record<string, unknown> & { state: string; targets: { agentId: string; state: string; rolledBack?: boolean }[] }> => {
    const r = await cli(["get", id, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Awaited<ReturnType<typeof getJson>>;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-test-"));
    stack = await Stack.start({ agents: [] });
    for (const id of ["a1", "a2"]) {
      await stack.startAgent(id, { env: { DEPLOY_AGENT_APPS: JSON.stringify({ web: {} }), DEPLOY_AGENT_ROOT: join(work, "root", id) } });
    }
    env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: work,
      XDG_STATE_HOME: join(work, "state"),
      DEPLOY_COORDINATOR: stack.address,
      // Packed bundles: a CLI SIGKILLed below cannot remove its own; afterAll does.
      TMPDIR: work,
    };
  });
  afterAll(async () => {
    await Promise.all(extra.map((p) => p.kill("SIGKILL")));
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("usage and validation errors exit 2 with one line", async () => {
    const noArgs = await cli([]);
    expect(noArgs.code).toBe(2);

    const missing = await cli(["deploy", HELLO, "--env", "prod", "--version", "v1"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^deployctl: required option '--app <app>' not specified/);

    const badNumber = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--max-concurrency", "0"]);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain("--max-concurrency");

    const noManifest = await cli(["deploy", join(HELLO, "hooks"), "--app", "web", "--env", "prod", "--version", "v1"]);
    expect(noManifest.code).toBe(2);
    expect(noManifest.stderr).toMatch(/^deployctl: .*no deploy\.yaml at the root of the bundle\n$/);

    const badApp = await cli(["deploy", HELLO, "--app", "no.dots", "--env", "prod", "--version", "v1"]);
    expect(badApp.code).toBe(2);
    expect(badApp.stderr).toMatch(/^deployctl: option '--app <app>' argument 'no.dots' is invalid/);

    // Refused by the coordinator: INVALID_ARGUMENT naming the field, on one line.
    const badTarget = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--targets", "a1,nosuch"]);
    expect(badTarget.code).toBe(2);
    expect(badTarget.stderr).toMatch(/^deployctl: INVALID_ARGUMENT: targets\[1\]: [^\n]*nosuch[^\n]*\n$/);

    // Refused by the coordinator before the upload (validate_only): the
    // same message and exit code as the create's, and nothing stored.
    const badVersion = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v 1"]);
    expect(badVersion.code, badVersion.stderr).toBe(2);
    expect(badVersion.stderr).toMatch(/^deployctl: INVALID_ARGUMENT: changeset\.version: must be printable ASCII without spaces\n$/);
    expect(badVersion.stdout).not.toContain("uploaded");
    const tooFew = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--canary", "5"]);
    expect(tooFew.code, tooFew.stderr).toBe(2);
    expect(tooFew.stderr).toMatch(/^deployctl: INVALID_ARGUMENT: strategy\.canary: /);
    expect(tooFew.stdout).not.toContain("uploaded");
    const stored = await cli(["artifacts", "--name", "web", "--json"]);
    expect(stored.code, stored.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(stored.stdout))).not.toContain("sha256:");

    const notFound = await cli(["get", "d-doesnotexist"]);
    expect(notFound.code).toBe(2);
    expect(notFound.stderr).toMatch(/^deployctl: NOT_FOUND: [^\n]*d-doesnotexist[^\n]*\n$/);
  });

  it("deploys a directory and exits 0; the same --request-id returns the same deployment", async () => {
    const r = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--max-concurrency", "2"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const requestId = /request id (\S+)/.exec(r.stdout)![1]!;
    const id = /deployment (d-\S+):/.exec(r.stdout)![1]!;
    // The request id is printed before the deployment exists.
    expect(r.stdout.indexOf("request id")).toBeLessThan(r.stdout.indexOf(`deployment ${id}:`));
    expect(r.stdout).toMatch(/deployment\.finished\s+-\s+SUCCEEDED/);
    const d = await getJson(id);
    expect(d.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(d.targets.map((t) => t.state)).toEqual(["TARGET_STATE_SUCCEEDED", "TARGET_STATE_SUCCEEDED"]);

    // A retried invocation (same directory, same request id) is the same deployment, not a second one.
    const again = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v1", "--max-concurrency", "2", "--request-id", requestId, "--detach"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`deployment ${id}:`);
  });

  it("--json prints one document whose deployment matches get --json", async () => {
    const r = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v2", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    // One JSON document on stdout; the lines for people (request id first) on stderr.
    const doc = JSON.parse(r.stdout) as { requestId: string; deployment: { id: string }; events: { type: string; sequence: string }[]; following: string };
    expect(r.stderr.indexOf(`request id ${doc.requestId}`)).toBeGreaterThanOrEqual(0);
    expect(r.stderr.indexOf("request id")).toBeLessThan(r.stderr.indexOf(`deployment ${doc.deployment.id}:`));
    expect(doc.following).toBe("ended");
    const types = doc.events.map((x) => x.type);
    expect(types).toContain("deployment.created");
    expect(types.at(-1)).toBe("deployment.finished");
    const seqs = doc.events.map((x) => Number(x.sequence));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(await getJson(doc.deployment.id)).toEqual(doc.deployment);
  });

  it("a failing validate hook exits 1 and the target is rolled back", async () => {
    const dir = await bundleVariant("bad", { FAIL_VALIDATE: "1\n" });
    const r = await cli(["deploy", dir, "--app", "web", "--env", "prod", "--version", "v3-bad"]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const id = /deployment (d-\S+):/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain("health check failed");
    const d = await getJson(id);
    expect(d.state).toBe("DEPLOYMENT_STATE_FAILED");
    const failed = d.targets.filter((t) => t.state === "TARGET_STATE_FAILED");
    expect(failed.length).toBe(1);
    expect(failed[0]!.rolledBack).toBe(true);
    // max_failures 0: the other target was never started.
    expect(d.targets.filter((t) => t.state === "TARGET_STATE_SKIPPED").length).toBe(1);
  });

  it("watch resumes after the CLI was SIGKILLed mid-follow and sees the end", async () => {
    const dir = await bundleVariant("slow", { "hooks/before_install.sh": "#!/bin/sh\necho installing slowly\nsleep 2\necho installed\n" });
    const running = startCli(["deploy", dir, "--app", "web", "--env", "prod", "--version", "v4"]);
    const id = (await running.waitFor(/deployment (d-\S+):/))[1]!;
    const started = await running.waitFor(/#\s*(\d+) target\.started/);
    running.child.kill("SIGKILL");
    const killed = await running.done;
    expect(killed.signal).toBe("SIGKILL");
    const lastPrinted = Math.max(...[...killed.stdout.matchAll(/^\S+\s+#(\d+) /gm)].map((m) => Number(m[1])));
    expect(lastPrinted).toBeGreaterThanOrEqual(Number(started[1]));

    const w = await cli(["watch", id]);
    expect(w.code, w.stdout + w.stderr).toBe(0);
    // Resumed from the state file: the events it had printed are not shown
    // again (the last one may be, if the kill fell between printing and saving).
    const resumedAfter = Number(/after event #(\d+)/.exec(w.stdout)![1]);
    // The kill may fall right after the started event was printed, before it was saved.
    expect(resumedAfter).toBeGreaterThanOrEqual(Number(started[1]) - 1);
    expect(resumedAfter).toBeLessThanOrEqual(lastPrinted);
    const seen = [...w.stdout.matchAll(/^\S+\s+#(\d+) /gm)].map((m) => Number(m[1]));
    expect(Math.min(...seen)).toBe(resumedAfter + 1);
    expect(resumedAfter + 1).toBeGreaterThanOrEqual(lastPrinted);
    expect(w.stdout).toMatch(/deployment\.finished\s+-\s+SUCCEEDED/);

    // Watching again prints nothing new and still reports the outcome.
    const again = await cli(["watch", id]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/target\.started/);
  });

  it("following survives a coordinator restart: reconnects after the last event seen", async () => {
    const dir = await bundleVariant("slow3", { "hooks/before_install.sh": "#!/bin/sh\nsleep 2\n" });
    const running = startCli(["deploy", dir, "--app", "web", "--env", "prod", "--version", "v6"]);
    await running.waitFor(/target\.started/);
    // SIGTERM drains: the open watch ends with UNAVAILABLE. A new coordinator
    // on the same address (the CLI knows only that one) takes over.
    await stack.coordinators[0]!.kill("SIGTERM");
    const again = new Proc("coordinator-again", COORDINATOR_MAIN, {
      NATS_URL: stack.nats.url,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_GRPC_LISTEN: stack.address,
      DEPLOY_AGENT_LIVE_MS: "3000",
      DEPLOY_SWEEP_INTERVAL_MS: "250",
      PATH: env.PATH!,
    });
    extra.push(again); // serves the following tests; killed in afterAll
    again.start();
    await again.waitForLog("coordinator running");
    const r = await running.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/watch interrupted \(UNAVAILABLE: [^\n]*\); resuming after event #\d+/);
    const seqs = [...r.stdout.matchAll(/^\S+\s+#(\d+) /gm)].map((m) => Number(m[1]));
    // Every event once, in order, across the reconnect.
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    expect(r.stdout).toMatch(/deployment\.finished\s+-\s+SUCCEEDED/);
  });

  it("Ctrl-C stops following only: exit 130, how to resume, the deployment goes on", async () => {
    const dir = await bundleVariant("slow2", { "hooks/before_install.sh": "#!/bin/sh\nsleep 2\n" });
    const running = startCli(["deploy", dir, "--app", "web", "--env", "prod", "--version", "v5"]);
    const id = (await running.waitFor(/deployment (d-\S+):/))[1]!;
    await running.waitFor(/target\.started/);
    running.child.kill("SIGINT");
    const r = await running.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`deployctl watch ${id}`);
    const w = await cli(["watch", id]);
    expect(w.code, w.stderr).toBe(0);
    expect((await getJson(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("list, agents, artifacts and cancel answer, as text and --json", async () => {
    const list = await cli(["list", "--app", "web", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { deployments: unknown[] }).deployments.length).toBeGreaterThanOrEqual(4);
    const failed = await cli(["list", "--state", "failed"]);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toContain("v3-bad");
    expect((await cli(["list", "--state", "bogus"])).code).toBe(2);

    const agents = await cli(["agents", "--app", "web", "--json"]);
    expect(agents.code, agents.stderr).toBe(0);
    const as = (JSON.parse(agents.stdout) as { agents: { id: string; live: boolean }[] }).agents;
    expect(as.map((a) => a.id).sort()).toEqual(["a1", "a2"]);
    expect(as.every((a) => a.live)).toBe(true);

    const artifacts = await cli(["artifacts", "--name", "web"]);
    expect(artifacts.code, artifacts.stderr).toBe(0);
    expect(artifacts.stdout).toMatch(/^web\s+web\s+sha256:/m);

    const id = /^(d-\S+)/m.exec((await cli(["list", "--limit", "1"])).stdout.split("\n")[1]!)![1]!;
    const cancel = await cli(["cancel", id, "--reason", "test"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain("nothing to cancel");
  });

  it("exits 3 when the coordinator cannot be reached", async () => {
    const port = await freePort();
    const started = Date.now();
    const r = await cli(["list", "--coordinator", `127.0.0.1:${port}`], { DEPLOYCTL_RETRY_BUDGET_MS: "1500" });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^deployctl: UNAVAILABLE: .*attempts in/);
    expect(Date.now() - started).toBeLessThan(15_000);
    const d = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v9"], { DEPLOY_COORDINATOR: `127.0.0.1:${port}`, DEPLOYCTL_RETRY_BUDGET_MS: "1000" });
    expect(d.code).toBe(3);
  });
});
