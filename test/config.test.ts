// Bad configuration stops a process at start with a message naming the key.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { loadCoordinatorConfig } from "../services/coordinator/src/config.js";
import { fencedCancels } from "../services/coordinator/src/rollout/publishCommand.js";

const ROOT = resolve(import.meta.dirname, "..");

function run(main: string, env: Record<string, string>, args: string[] = []): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, main), ...args], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("coordinator config", () => {
  it("has defaults (in development mode: production needs credentials)", () => {
    const c = loadCoordinatorConfig([], { devMode: true });
    expect(c.grpc.listen).toBe("127.0.0.1:50051");
    expect(c.rollout.defaultDeliveryTimeoutMs).toBeGreaterThan(0);
  });

  it("commands say cancelFenced (the agent makes no look) only while events outlive commands", () => {
    const { streams } = loadCoordinatorConfig([], { devMode: true });
    expect(streams.eventsMaxAgeMs).toBeGreaterThanOrEqual(streams.commandsMaxAgeMs); // the defaults: 90 days and 7
    expect(fencedCancels(streams)).toBe(true);
    expect(fencedCancels({ eventsMaxAgeMs: 0, commandsMaxAgeMs: 60_000 })).toBe(true); // events kept for ever
    // A command held for an agent away could outlive its target's events, and win a race on an emptied subject: the look stops it.
    expect(fencedCancels({ eventsMaxAgeMs: 2000, commandsMaxAgeMs: 60_000 })).toBe(false);
  });

  it("reads a file given with --config, with the environment overriding it", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ devMode: true, grpc: { listen: "127.0.0.1:6000" }, rollout: { agentLiveMs: 9000 } }));
    const c = loadCoordinatorConfig(["--config", file]);
    expect(c.grpc.listen).toBe("127.0.0.1:6000");
    expect(c.rollout.agentLiveMs).toBe(9000);
  });

  it("the binary exits 2 naming the bad key", () => {
    const r = run("dist/services/coordinator/src/main.js", { DEPLOY_AGENT_LIVE_MS: "soon" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/rollout\.agentLiveMs/);
    const r2 = run("dist/services/coordinator/src/main.js", { DEPLOY_GRPC_LISTEN: "nowhere" });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/grpc\.listen/);
  });

  it("refuses unknown keys in a config file", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ grpc: { listne: "x" } }));
    expect(() => loadCoordinatorConfig(["--config", file])).toThrow(/listne/);
  });

  // Issue 18: secure unless told otherwise.
  it("refuses to start in production mode without TLS, tokens, a signing key and a NATS nkey, naming each", () => {
    const r = run("dist/services/coordinator/src/main.js", {});
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("production mode needs grpc.tls.certFile and grpc.tls.keyFile (DEPLOY_GRPC_TLS_CERT, DEPLOY_GRPC_TLS_KEY)");
    expect(r.stderr).toContain("at least one token (grpc.tokens or grpc.tokensFile");
    expect(r.stderr).toContain("a command signing key (signing.seedFile: DEPLOY_SIGNING_SEED_FILE)");
    expect(r.stderr).toContain("a NATS nkey (nats.nkeySeedFile: NATS_NKEY_SEED_FILE)");
    expect(r.stderr).toContain("agent bindings (agents.bindingsFile: DEPLOY_AGENT_BINDINGS_FILE)");
    expect(r.stderr).toContain("npm run gen-credentials");
    expect(r.stderr).toContain("DEPLOY_DEV_MODE=1");
  });

  it("reads agent bindings, and refuses a bindings file it cannot read, naming the entry", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "bindings.json");
    writeFileSync(file, JSON.stringify({ schema: "deploy.bindings.v1", agents: { "web-1": { environment: "prod", apps: ["web"] } } }));
    expect(loadCoordinatorConfig([], { devMode: true, agents: { bindingsFile: file } }).agents.bindingsFile).toBe(file);
    for (const [bad, message] of [
      [{ schema: "deploy.bindings.v1", agents: { "web-1": { environment: "pr od", apps: ["web"] } } }, /agents\.bindingsFile: bindings\.agents\.web-1\.environment/],
      [{ schema: "deploy.bindings.v1", agents: { coordinator: { environment: "prod", apps: [] } } }, /bindings\.agents\.coordinator: "coordinator" is reserved/],
      [{ agents: {} }, /bindings\.schema/],
    ] as const) {
      writeFileSync(file, JSON.stringify(bad));
      expect(() => loadCoordinatorConfig([], { devMode: true, agents: { bindingsFile: file } })).toThrow(message);
    }
    expect(() => loadCoordinatorConfig([], { devMode: true, agents: { bindingsFile: join(dir, "missing.json") } })).toThrow(/agents\.bindingsFile: .*ENOENT/);
  });

  it("development mode listens on loopback only", () => {
    for (const [key, env] of [
      ["grpc.listen", { DEPLOY_GRPC_LISTEN: "0.0.0.0:50051" }],
      ["http.listen", { DEPLOY_HTTP_LISTEN: "10.1.2.3:8080" }],
      ["metrics.listen", { DEPLOY_METRICS_LISTEN: "[::]:9464" }],
    ] as const) {
      const r = run("dist/services/coordinator/src/main.js", { DEPLOY_DEV_MODE: "1", ...env });
      expect(r.status, key).toBe(2);
      expect(r.stderr, key).toMatch(new RegExp(`${key.replace(".", "\\.")}: ".*" is not a loopback address; development mode`));
    }
    expect(loadCoordinatorConfig([], { devMode: true, grpc: { listen: "localhost:1" }, http: { listen: "127.0.0.2:2" }, metrics: { listen: "[::1]:3" } }).devMode).toBe(true);
  });
});

describe("agent config", () => {
  const base = { devMode: true, environment: "prod", stateDir: "/tmp/x", apps: { web: { deploy: "/bin/true" } } };

  it("accepts a valid config", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "a.json");
    writeFileSync(file, JSON.stringify({ ...base, id: "vm-1" }));
    expect(loadAgentConfig(["--config", file])).toMatchObject({ id: "vm-1", environment: "prod", shutdownGraceMs: 30_000, shutdownWayBackMs: 10_000 });
    writeFileSync(file, JSON.stringify({ ...base, id: "vm-1", shutdownWayBackMs: 25_000 }));
    expect(loadAgentConfig(["--config", file]).shutdownWayBackMs).toBe(25_000);
  });

  it.each([
    [{ id: "bad.id" }, /id/],
    [{ id: "vm 1" }, /id/],
    [{ id: "coordinator" }, /id: "coordinator" is reserved for the protocol's own events/],
    [{ environment: "" }, /environment: is required/],
    [{ apps: { "we.b": { deploy: "/bin/true" } } }, /apps\.we\.b/],
    [{ apps: { web: { deploy: "relative/path" } } }, /apps\.web\.deploy: .* absolute/],
    [{ apps: { web: { deploy: 5 } } }, /apps\.web\.deploy/],
    [{ apps: { web: { deplyo: "/bin/true" } } }, /apps\.web\.deplyo: unknown key/],
    [{ shutdownWayBackMs: -1 }, /shutdownWayBackMs/],
    [{ heartbeatIntervalMs: 5000, idleHeartbeatIntervalMs: 1000 }, /idleHeartbeatIntervalMs: must be 0 \(heartbeatIntervalMs\) or at least heartbeatIntervalMs \(5000\)/],
    [{ journalKeepMs: 3_600_000 }, /journalKeepMs: must be 0 \(kept for ever\) or at least 86400000 \(one day; keep it longer than the coordinator's streams\.commandsMaxAgeMs\)/],
  ])("rejects %j naming the key", (patch, message) => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "a.json");
    writeFileSync(file, JSON.stringify({ ...base, id: "vm-1", ...patch }));
    expect(() => loadAgentConfig(["--config", file])).toThrow(message);
  });

  it("the binary exits 2 naming the bad key", () => {
    const r = run("dist/services/agent/src/main.js", { DEPLOY_AGENT_ID: "a.b", DEPLOY_ENVIRONMENT: "prod", DEPLOY_AGENT_STATE_DIR: "/tmp/x" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration: id/);
  });

  // Issue 18: an agent refuses unsigned commands unless in development mode,
  // so it refuses to start without a trusted signer (and its own nkey).
  it("refuses to start in production mode without trusted signers or its NATS nkey", () => {
    const env = { DEPLOY_AGENT_ID: "a1", DEPLOY_ENVIRONMENT: "prod", DEPLOY_AGENT_STATE_DIR: "/tmp/x" };
    const r = run("dist/services/agent/src/main.js", env);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration: trustedSigners: is required in production mode \(DEPLOY_AGENT_TRUSTED_SIGNERS: .*npm run gen-credentials.*DEPLOY_DEV_MODE=1/);
    const signer = createUser().getPublicKey();
    const r2 = run("dist/services/agent/src/main.js", { ...env, DEPLOY_AGENT_TRUSTED_SIGNERS: signer });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/invalid configuration: nats\.nkeySeedFile: is required in production mode \(NATS_NKEY_SEED_FILE/);
  });
});
