// Issue 18: an agent is bound to what it may serve. A real nats-server runs
// the authorization block gen-credentials generates (each agent's nkey may
// act only as its own id), and the coordinator holds every registry entry to
// bindings.json (each id's environment and apps). An agent claiming an
// environment or an app it was not given never becomes a target and is not
// listed; an agent started with another agent's identity is refused by the
// server and changes nothing of that agent's entry.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizationBlock } from "../scripts/gen-credentials.js";
import { AGENT_MAIN, ROOT } from "../scripts/lib/paths.js";
import { bindingsJson, parseAgentRecord } from "../services/shared/src/index.js";
import { grpcError } from "./helpers/client.js";
import { newKey, sleep, uniq, waitFor, type Key } from "./helpers/security.js";
import { Proc, Stack } from "./helpers/stack.js";

// b1: prod/web, runs as bound. b2: bound to staging, claims prod. b3: bound
// to prod/web, claims web and api.
const AGENTS = ["b1", "b2", "b3"] as const;
const keys: Record<string, Key> = Object.fromEntries([...AGENTS, "coordinator", "admin"].map((k) => [k, newKey()]));
const signing = newKey();
let dir = "";
let stack: Stack;
let admin: NatsConnection;
let metricsPort = 0;

function agentEnv(id: string): Record<string, string> {
  return { NATS_NKEY_SEED_FILE: join(dir, `${id}.nk`), DEPLOY_AGENT_TRUSTED_SIGNERS: signing.publicKey };
}

async function metric(name: string): Promise<number> {
  // Port 0: the coordinator binds a free port and logs it (a port chosen here could collide with the stack's own).
  metricsPort ||= Number(/"listen":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"metrics listening"/.exec(stack.coordinators[0]!.logs())?.[1]);
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "deploy-bindings-"));
  for (const [who, k] of Object.entries(keys)) writeFileSync(join(dir, `${who}.nk`), `${k.seed}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, "bindings.json"),
    bindingsJson([
      ["b1", { environment: "prod", apps: ["web"] }],
      ["b2", { environment: "staging", apps: ["web"] }],
      ["b3", { environment: "prod", apps: ["web"] }],
    ]),
  );
  stack = await Stack.start({
    agents: [],
    natsConfigText: authorizationBlock({
      coordinators: [{ name: "c1", publicKey: keys.coordinator!.publicKey }],
      agents: AGENTS.map((id) => ({ id, publicKey: keys[id]!.publicKey, apps: id === "b3" ? ["web", "api"] : ["web"] })),
      admin: keys.admin!.publicKey,
    }),
    coordinatorEnv: {
      NATS_NKEY_SEED_FILE: join(dir, "coordinator.nk"),
      DEPLOY_SIGNING_SEED: signing.seed,
      DEPLOY_AGENT_BINDINGS_FILE: join(dir, "bindings.json"),
      DEPLOY_METRICS_LISTEN: "127.0.0.1:0",
    },
  });
  await stack.startAgent("b1", { env: agentEnv("b1") });
  const deploy = join(stack.dir, "deploy.sh");
  await stack.startAgent("b2", { environment: "prod", env: agentEnv("b2") });
  await stack.startAgent("b3", { environment: "prod", apps: { web: { deploy }, api: { deploy } }, env: agentEnv("b3") });
  admin = await connect({ servers: stack.nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(keys.admin!.seed)) });
  // Each refused entry is logged once, when it is first seen.
  const refusedLogged = (id: string): boolean => stack.coordinators[0]!.logs().split("\n").some((l) => l.includes("agent entry refused") && l.includes(`"agentId":"${id}"`));
  await waitFor("b2 and b3 refused", () => refusedLogged("b2") && refusedLogged("b3"));
}, 90_000);

afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("agents bound to what their credentials give them", () => {
  it("the coordinator says it holds agents to their bindings", () => {
    expect(stack.coordinators[0]!.logs()).toContain("agents are held to their bindings");
  });

  it("an agent claiming an environment or an app it was not given is not listed, and counted", async () => {
    const listed = (await stack.client().agents()).agents.map((a) => a.id);
    expect(listed).toEqual(["b1"]);
    const logs = stack.coordinators[0]!.logs();
    expect(logs).toMatch(/environment \\"prod\\" is not its bound environment \\"staging\\"/);
    expect(logs).toMatch(/app\(s\) api not bound \(bound: web\)/);
    expect(await metric("deploy_agents_refused")).toBe(2);
    expect(await metric("deploy_agent_entries_refused_total")).toBeGreaterThanOrEqual(2);
  });

  it("CreateDeployment never picks them: every agent of the app and environment is b1 alone, an explicit or bound-elsewhere target is refused", { timeout: 60_000 }, async () => {
    const client = stack.client();
    const d = await client.create({ requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v1" } });
    expect(d.targets!.map((t) => t.agentId)).toEqual(["b1"]);
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const id of ["b2", "b3"]) {
      const err = await grpcError(client.create({ requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v2" }, targets: [id] }));
      expect(err.details, id).toMatch(new RegExp(`targets\\[0\\]: agent "${id}" is not registered`));
    }
    // The app b3 claims, and the environment b2 is bound to but does not claim: nobody serves them.
    const api = await grpcError(client.create({ requestId: uniq("r"), app: "api", environment: "prod", changeset: { version: "v1" } }));
    expect(api.details).toMatch(/no live agent serves app api in environment prod/);
    const staging = await grpcError(client.create({ requestId: uniq("r"), app: "web", environment: "staging", changeset: { version: "v1" } }));
    expect(staging.details).toMatch(/no live agent serves app web in environment staging/);
    for (const id of ["b2", "b3"]) expect((await stack.runs(id)).length, id).toBe(0);
  });

  it("an agent started with another agent's identity is refused by the server and leaves that agent's entry alone", { timeout: 60_000 }, async () => {
    const kv = await new Kvm(admin).open("deploy_agents");
    const before = parseAgentRecord((await kv.get("b1"))!.value);
    // b2's nkey, b1's id (and b2's reply prefix, so only what names the id is at stake).
    const impostor = new Proc("impostor", AGENT_MAIN, {
      NATS_URL: stack.nats.url,
      ...agentEnv("b2"),
      NATS_INBOX_PREFIX: "_INBOX_b2",
      DEPLOY_AGENT_ID: "b1",
      DEPLOY_ENVIRONMENT: "prod",
      DEPLOY_AGENT_APPS: JSON.stringify({ web: { deploy: join(stack.dir, "deploy.sh") } }),
      DEPLOY_AGENT_STATE_DIR: join(dir, "impostor-state"),
      DEPLOY_AGENT_ROOT: join(dir, "impostor-root"),
      DEPLOY_AGENT_HEARTBEAT_MS: "500",
    });
    impostor.start();
    try {
      await impostor.waitForLog("NATS refuses this agent's requests");
      await sleep(1500);
      expect(impostor.logs()).not.toContain("agent running");
      // nats-server 2.15 logs `Publish Violation - Subject "…"` with the user's nkey.
      const violations = stack.nats.logs().split("\n").filter((l) => l.includes(keys.b2!.publicKey) && /Publish Violation/i.test(l));
      expect(violations.join("\n")).toMatch(/\$JS\.API\.CONSUMER\.(INFO|CREATE)\.DEPLOY_COMMANDS\.agent-b1/);
      const after = parseAgentRecord((await kv.get("b1"))!.value);
      expect(after.startedAt).toBe(before.startedAt);
      expect(after.host).toBe(before.host);
      expect((await stack.client().agents()).agents.map((a) => a.id)).toEqual(["b1"]);
    } finally {
      await impostor.kill("SIGKILL");
    }
  });

  it("given what its binding allows, the same agent is taken: b2 restarted in staging serves web there", { timeout: 60_000 }, async () => {
    await stack.agent("b2").kill("SIGKILL");
    await stack.startAgent("b2", { environment: "staging", env: agentEnv("b2") });
    await waitFor("b2 listed", async () => (await stack.client().agents()).agents.some((a) => a.id === "b2" && a.environment === "staging"));
    const client = stack.client();
    const d = await client.create({ requestId: uniq("r"), app: "web", environment: "staging", changeset: { version: "v1" } });
    expect(d.targets!.map((t) => t.agentId)).toEqual(["b2"]);
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await metric("deploy_agents_refused")).toBe(1);
  });

  it("an operator widens a binding: the new bindings.json and SIGHUP take b3 at once; a broken file changes nothing", { timeout: 60_000 }, async () => {
    const coordinator = stack.coordinators[0]!;
    writeFileSync(
      join(dir, "bindings.json"),
      bindingsJson([
        ["b1", { environment: "prod", apps: ["web"] }],
        ["b2", { environment: "staging", apps: ["web"] }],
        ["b3", { environment: "prod", apps: ["web", "api"] }],
      ]),
    );
    // Refused for longer than the liveness window (3 s) first: its idle
    // heartbeats, not the entry it wrote at its start, keep it live (a
    // clean-clone run found b3 offline once taken: "no live agent serves app api").
    await new Promise((r) => setTimeout(r, 3_500));
    let from = coordinator.logLength;
    process.kill(coordinator.pid, "SIGHUP");
    await coordinator.waitForLog("agent bindings reloaded", 10_000, from);
    const client = stack.client();
    await waitFor("b3 listed", async () => (await client.agents()).agents.some((a) => a.id === "b3"));
    expect(await metric("deploy_agents_refused")).toBe(0);
    const d = await client.create({ requestId: uniq("r"), app: "api", environment: "prod", changeset: { version: "v1" } });
    expect(d.targets!.map((t) => t.agentId)).toEqual(["b3"]);
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    writeFileSync(join(dir, "bindings.json"), '{"schema": "deploy.bindings.v1", "agents": {"b3": ');
    from = coordinator.logLength;
    process.kill(coordinator.pid, "SIGHUP");
    await coordinator.waitForLog("agent bindings not reloaded; the previous ones stay in force", 10_000, from);
    expect((await client.agents()).agents.map((a) => a.id)).toEqual(["b1", "b2", "b3"]);
  });

  it("gen-credentials gives each agent its binding, and refuses an agent without an environment and apps", () => {
    const out = join(dir, "creds");
    const gen = (args: string[]): { status: number | null; stderr: string } => {
      const r = spawnSync(process.execPath, [join(ROOT, "dist/scripts/gen-credentials.js"), "--out", out, ...args], { encoding: "utf8" });
      return { status: r.status, stderr: r.stderr };
    };
    const refused = gen(["--agents", "web-1"]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/--agents needs --environment and --apps/);
    expect(gen(["--agent", "web-1:prod"]).stderr).toMatch(/expected <id>:<environment>:<app>/);
    expect(gen(["--agent", "web-1:prod:web", "--agents", "web-2,web-3", "--environment", "staging", "--apps", "web,api"]).status).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "bindings.json"), "utf8"))).toEqual({
      schema: "deploy.bindings.v1",
      agents: { "web-1": { environment: "prod", apps: ["web"] }, "web-2": { environment: "staging", apps: ["api", "web"] }, "web-3": { environment: "staging", apps: ["api", "web"] } },
    });
    expect(readFileSync(join(out, "coordinator-1.env"), "utf8")).toContain(`DEPLOY_AGENT_BINDINGS_FILE=${join(out, "bindings.json")}`);
    expect(readFileSync(join(out, "agent-web-2.env"), "utf8")).toContain("DEPLOY_ENVIRONMENT=staging");
  });
});
