// Bad configuration stops a process at start with a message naming the key.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { loadCoordinatorConfig } from "../services/coordinator/src/config.js";

const ROOT = resolve(import.meta.dirname, "..");

function run(main: string, env: Record<string, string>, args: string[] = []): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, main), ...args], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("coordinator config", () => {
  it("has defaults", () => {
    const c = loadCoordinatorConfig([]);
    expect(c.grpc.listen).toBe("127.0.0.1:50051");
    expect(c.rollout.defaultDeliveryTimeoutMs).toBeGreaterThan(0);
  });

  it("reads a file given with --config, with the environment overriding it", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ grpc: { listen: "127.0.0.1:6000" }, rollout: { agentLiveMs: 9000 } }));
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
});

describe("agent config", () => {
  const base = { environment: "prod", stateDir: "/tmp/x", apps: { web: { deploy: "/bin/true" } } };

  it("accepts a valid config", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "a.json");
    writeFileSync(file, JSON.stringify({ ...base, id: "vm-1" }));
    expect(loadAgentConfig(["--config", file])).toMatchObject({ id: "vm-1", environment: "prod" });
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
});
