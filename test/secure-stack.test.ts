// The production mode end to end (issue 18): everything `npm run
// gen-credentials` writes, used as the README says, on real processes. A
// nats-server with the generated least-privilege users and TLS; a
// coordinator in production mode (no DEPLOY_DEV_MODE) with gRPC TLS, tokens,
// signing and its nkey, talking TLS to NATS; an agent with its nkey and the
// trusted signer; and deployctl with the CA and the deployer token. A
// deployment succeeds, and each credential is shown to be needed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MAIN, ROOT } from "../scripts/lib/paths.js";
import { toolPath } from "../scripts/lib/tools.js";
import { runCli } from "./helpers/deployctl.js";
import { Proc, Stack } from "./helpers/stack.js";

const GEN = join(ROOT, "dist/scripts/gen-credentials.js");

/** KEY=value lines of a generated .env file. */
function envFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

describe("production mode with the generated credentials", () => {
  let dir: string;
  let stack: Stack;
  let cli: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "creds-"));
    execFileSync(process.execPath, [GEN, "--out", dir, "--agent", "a1:prod:web", "--coordinators", "1", "--admin", "--tls-hosts", "localhost,127.0.0.1"], { stdio: "pipe" });
    // nats-server's include takes paths relative to its config file, which
    // the helper writes in a temp dir of its own: the generated blocks inline.
    const natsConfig = [readFileSync(join(dir, "authorization.conf"), "utf8"), readFileSync(join(dir, "tls.conf"), "utf8"), "jetstream {\n  sync_interval: always\n}\n"].join("\n");
    stack = await Stack.start({
      agents: [],
      natsConfigText: natsConfig,
      coordinatorEnv: { ...envFile(join(dir, "coordinator-1.env")), DEPLOY_DEV_MODE: "false" },
    });
    await stack.startAgent("a1", { env: { ...envFile(join(dir, "agent-a1.env")), DEPLOY_DEV_MODE: "false" } });
    cli = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      DEPLOY_COORDINATOR: `localhost:${stack.grpcPort}`,
      DEPLOY_TLS: "1",
      DEPLOY_CA: join(dir, "ca.pem"),
      DEPLOY_TOKEN: readFileSync(join(dir, "deployer.token"), "utf8").trim(),
      DEPLOYCTL_RETRY_BUDGET_MS: "3000",
    };
  });
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs without development mode: signed commands, TLS, tokens, nkeys", () => {
    const logs = stack.coordinators[0]!.logs();
    expect(logs).not.toContain("DEVELOPMENT MODE");
    expect(logs).toContain("commands are signed");
    expect(stack.agent("a1").logs()).toContain("only signed commands are accepted");
    expect(stack.agent("a1").logs()).not.toContain("DEVELOPMENT MODE");
  });

  it("deployctl with the CA and the deployer token deploys; the deployment SUCCEEDS", async () => {
    const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v1"], { env: cli });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/SUCCEEDED/);
  });

  // The agent's command consumer is kept in memory: a restart of the server
  // forgets it, and the agent makes it again with its own least-privilege
  // user (the create subject that names its consumer and filter).
  it("after a nats-server restart the agent makes its consumer again with its own nkey, and the next deployment SUCCEEDS", async () => {
    await stack.nats.kill();
    await stack.nats.restart();
    for (let i = 0; !stack.agent("a1").logs().includes("made the command consumer again"); i++) {
      if (i > 300) throw new Error(`a1 did not make its consumer again:\n${stack.agent("a1").logs().slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(stack.agent("a1").logs()).not.toMatch(/Permissions Violation/i);
    // The coordinator too (until then a create answers ABORTED, "retry").
    for (let i = 0; !stack.coordinators[0]!.logs().includes("reconnected to NATS"); i++) {
      if (i > 300) throw new Error("the coordinator did not reconnect to NATS");
      await new Promise((res) => setTimeout(res, 100));
    }
    const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-after-restart"], { env: cli });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/SUCCEEDED/);
  });

  it("the coordinator's race decision on a target's own subject is allowed: a cancel of a dispatched target lands", async () => {
    // a1 frozen: its command waits, and the cancel races (and beats) its start.
    const pid = stack.agent("a1").pid;
    process.kill(pid, "SIGSTOP");
    try {
      const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-cancel", "--detach", "--json"], { env: cli });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const id = (JSON.parse(r.stdout) as { deployment: { id: string } }).deployment.id;
      const c = await runCli(["cancel", id, "--reason", "frozen agent"], { env: cli });
      expect(c.code, `${c.stdout}\n${c.stderr}`).toBe(0);
      let last = "";
      for (let i = 0; i < 100 && !/CANCELLED/.test(last); i++) {
        last = (await runCli(["get", id], { env: cli })).stdout;
        if (!/DEPLOYMENT_STATE_CANCELLED|CANCELLED/.test(last)) await new Promise((res) => setTimeout(res, 200));
      }
      expect(last).toMatch(/CANCELLED/);
      expect(stack.coordinators[0]!.logs()).not.toMatch(/Permissions Violation/i);
    } finally {
      process.kill(pid, "SIGCONT");
    }
  });

  // A restarted agent asks for the command its last run held (the consumer's
  // ack_wait shortened, then put back: commandConsumer.ts
  // RECLAIM_ACK_WAIT_MS), which its own user may do.
  it("an agent killed holding its command gets it again at its restart with its own nkey; the deployment SUCCEEDS", async () => {
    // Live first: the test before froze it, and a heartbeat goes out only
    // once it runs again (under load, longer than agentLiveMs later).
    for (let i = 0; !/^a1\s+\S+\s+yes\b/m.test((await runCli(["agents"], { env: cli })).stdout); i++) {
      if (i > 50) throw new Error("a1 is not shown live");
      await new Promise((res) => setTimeout(res, 200));
    }
    const proc = stack.agent("a1");
    process.kill(proc.pid, "SIGSTOP");
    const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v-held", "--detach", "--json"], { env: cli });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const id = (JSON.parse(r.stdout) as { deployment: { id: string } }).deployment.id;
    // Delivered to the stopped agent's pull, never acknowledged.
    await new Promise((res) => setTimeout(res, 1000));
    process.kill(proc.pid, "SIGKILL");
    await proc.exited();
    const restarted = await stack.startAgent("a1");
    const w = await runCli(["watch", id], { env: cli });
    expect(w.code, `${w.stdout}\n${w.stderr}`).toBe(0);
    expect(w.stdout + w.stderr).toMatch(/SUCCEEDED/);
    expect(restarted.logs()).toContain("asking for it again now");
    expect(restarted.logs()).not.toMatch(/Permissions Violation|could not put the command consumer's ack_wait back|could not ask for the command/i);
  });

  // The coordinator's generated NATS user writes deploy_cordons; the cordon records the token's name.
  it("deployctl cordon and uncordon with the deployer token; the viewer's is refused", async () => {
    const c = await runCli(["cordon", "a1", "--reason", "patching"], { env: cli });
    expect(c.code, `${c.stdout}\n${c.stderr}`).toBe(0);
    const agents = await runCli(["agents", "--json"], { env: cli });
    const a1 = (JSON.parse(agents.stdout) as { agents: { id: string; cordon?: { reason: string; cordonedBy: string } }[] }).agents.find((a) => a.id === "a1");
    expect(a1?.cordon?.reason).toBe("patching");
    expect(a1?.cordon?.cordonedBy).not.toMatch(/anonymous/);
    const viewer = { ...cli, DEPLOY_TOKEN: readFileSync(join(dir, "viewer.token"), "utf8").trim() };
    expect((await runCli(["uncordon", "a1"], { env: viewer })).stderr).toMatch(/PERMISSION_DENIED/);
    const u = await runCli(["uncordon", "a1"], { env: cli });
    expect(u.code, `${u.stdout}\n${u.stderr}`).toBe(0);
  });

  // The coordinator's generated NATS user writes deploy_freezes; the freeze records the token's name.
  it("deployctl freeze and unfreeze with the deployer token; the viewer lists freezes and is refused a freeze", async () => {
    const f = await runCli(["freeze", "staging", "--reason", "audit window", "--for", "1h"], { env: cli });
    expect(f.code, `${f.stdout}\n${f.stderr}`).toBe(0);
    expect(f.stdout).not.toMatch(/anonymous/);
    const viewer = { ...cli, DEPLOY_TOKEN: readFileSync(join(dir, "viewer.token"), "utf8").trim() };
    const listed = await runCli(["freezes", "--json"], { env: viewer });
    expect(listed.code, `${listed.stdout}\n${listed.stderr}`).toBe(0);
    expect((JSON.parse(listed.stdout) as { freezes: { environment: string; reason: string }[] }).freezes).toEqual([expect.objectContaining({ environment: "staging", reason: "audit window" })]);
    expect((await runCli(["unfreeze", "staging"], { env: viewer })).stderr).toMatch(/PERMISSION_DENIED/);
    const u = await runCli(["unfreeze", "staging"], { env: cli });
    expect(u.code, `${u.stdout}\n${u.stderr}`).toBe(0);
    expect(stack.coordinators[0]!.logs()).not.toMatch(/Permissions Violation/i);
  });

  it("without the token: UNAUTHENTICATED; with the viewer's: reads only", async () => {
    const { DEPLOY_TOKEN: _t, ...noToken } = cli;
    const r = await runCli(["list"], { env: noToken });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/UNAUTHENTICATED/);
    const viewer = { ...cli, DEPLOY_TOKEN: readFileSync(join(dir, "viewer.token"), "utf8").trim() };
    expect((await runCli(["list"], { env: viewer })).code).toBe(0);
    const denied = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v2"], { env: viewer });
    expect(denied.stderr).toMatch(/PERMISSION_DENIED/);
  });

  it("the nats CLI reads the streams with the admin nkey and the CA, and is refused without the nkey", () => {
    const nats = (args: string[]): { code: number; out: string } => {
      try {
        return { code: 0, out: execFileSync(toolPath("nats"), ["--server", stack.nats.url, "--tlsca", join(dir, "ca.pem"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "", HOME: dir } }) };
      } catch (err) {
        const e = err as { status: number; stdout: string; stderr: string };
        return { code: e.status, out: `${e.stdout}${e.stderr}` };
      }
    };
    const ok = nats(["--nkey", join(dir, "admin.nk"), "stream", "info", "DEPLOY_EVENTS"]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain("deploy.evt.>");
    const refused = nats(["stream", "info", "DEPLOY_EVENTS"]);
    expect(refused.code, refused.out).not.toBe(0);
    expect(refused.out).toMatch(/authorization violation/i);
  });

  it("an agent without its nkey refuses to start in production mode", async () => {
    const a2 = new Proc("agent-a2", AGENT_MAIN, { ...envFile(join(dir, "agent-a1.env")), NATS_NKEY_SEED_FILE: "", NATS_URL: stack.nats.url, DEPLOY_AGENT_ID: "a2", DEPLOY_ENVIRONMENT: "prod", DEPLOY_AGENT_STATE_DIR: join(dir, "a2") });
    a2.start();
    expect(await a2.exited()).toBe(2);
    expect(a2.logs()).toMatch(/nats\.nkeySeedFile: is required in production mode/);
  });
});
