// gRPC security with real processes and a real TLS certificate (made with
// openssl): bearer tokens with roles, UNAUTHENTICATED / PERMISSION_DENIED,
// the health check left open, mutual TLS, the production guard, deployctl's
// --token/--ca, and tokens never written to the logs.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../services/coordinator/src/grpc/auth.js";
import { Stack } from "./helpers/stack.js";
import { makeCertificates, rawClient, uniq } from "./helpers/security.js";

const ROOT = resolve(import.meta.dirname, "..");
const CLI = join(ROOT, "dist/services/deployctl/src/main.js");
const COORDINATOR_MAIN = join(ROOT, "dist/services/coordinator/src/main.js");

const DEPLOYER = `dep-${uniq("t")}-secret`;
const VIEWER = `view-${uniq("t")}-secret`;

const READS: [string, object][] = [
  ["GetDeployment", { deploymentId: "d-none" }],
  ["ListDeployments", {}],
  ["ListAgents", {}],
  ["ListFreezes", {}],
  ["ListEnvironmentPolicies", {}],
  ["GetRelease", { app: "web", environment: "prod" }],
  ["GetArtifact", { name: "web", digest: `sha256:${"0".repeat(64)}` }],
  ["ListArtifacts", {}],
];
const WRITES: [string, object][] = [
  ["CreateDeployment", { requestId: "r-1", app: "web", environment: "prod", changeset: { version: "v1" } }],
  ["CancelDeployment", { deploymentId: "d-none" }],
  ["RevertDeployment", { deploymentId: "d-none" }],
  ["CordonAgent", { agentId: "a1", reason: "viewer tries" }],
  ["UncordonAgent", { agentId: "a1" }],
  ["DeregisterAgent", { agentId: "a1" }],
  ["FreezeEnvironment", { environment: "prod", reason: "viewer tries" }],
  ["UnfreezeEnvironment", { environment: "prod" }],
  ["SetEnvironmentPolicy", { environment: "prod", requireCanary: true, reason: "viewer tries" }],
];

function healthStatus(address: string, creds: grpc.ChannelCredentials): Promise<string> {
  const def = loadSync(healthProtoPath, { keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const health = new pkg.grpc.health.v1.Health(address, creds) as unknown as grpc.Client & {
    Check: (req: { service: string }, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
  };
  return new Promise<string>((res, rej) => health.Check({ service: "" }, { deadline: Date.now() + 10_000 }, (e, r) => (health.close(), e ? rej(e) : res(r.status))));
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", DEPLOYCTL_RETRY_BUDGET_MS: "1500", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("exit", (code) => res({ code, stdout, stderr }));
  });
}

describe("gRPC with TLS and bearer tokens", () => {
  let stack: Stack;
  let certs: ReturnType<typeof makeCertificates>;
  beforeAll(async () => {
    certs = makeCertificates();
    stack = await Stack.start({
      agents: ["a1"],
      coordinatorEnv: {
        DEPLOY_GRPC_TLS_CERT: certs.serverCert,
        DEPLOY_GRPC_TLS_KEY: certs.serverKey,
        DEPLOY_GRPC_TOKENS: `ci:deployer:${hashToken(DEPLOYER)},dashboard:viewer:${hashToken(VIEWER)}`,
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it("no token or a wrong token: UNAUTHENTICATED on every DeployService method", async () => {
    for (const token of [undefined, "wrong-token"]) {
      const c = rawClient(stack.address, { ca: certs.ca, ...(token ? { token } : {}) });
      try {
        for (const [m, req] of [...READS, ...WRITES]) expect(await c.code(m, req), `${m} with ${token ?? "no token"}`).toBe(grpc.status.UNAUTHENTICATED);
        expect(await c.watchCode("d-none")).toBe(grpc.status.UNAUTHENTICATED);
        expect(await c.uploadCode("web", Buffer.from("x"))).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        c.close();
      }
    }
  });

  it("viewer reads and watches; create, cancel and upload are PERMISSION_DENIED", async () => {
    const c = rawClient(stack.address, { ca: certs.ca, token: VIEWER });
    try {
      for (const [m, req] of READS) expect([grpc.status.OK, grpc.status.NOT_FOUND], m).toContain(await c.code(m, req));
      expect(await c.watchCode("d-none")).toBe(grpc.status.NOT_FOUND);
      for (const [m, req] of WRITES) expect(await c.code(m, req), m).toBe(grpc.status.PERMISSION_DENIED);
      expect(await c.uploadCode("web", Buffer.from("x"))).toBe(grpc.status.PERMISSION_DENIED);
      expect((await c.unary<{ deployments?: unknown[] }>("ListDeployments", {})).deployments ?? []).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("deployer deploys; the viewer watches it", async () => {
    const dep = rawClient(stack.address, { ca: certs.ca, token: DEPLOYER });
    const view = rawClient(stack.address, { ca: certs.ca, token: VIEWER });
    try {
      const d = await dep.unary<{ id: string }>("CreateDeployment", { requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v1" } });
      expect(await view.watchCode(d.id)).toBe(grpc.status.OK);
      expect((await view.unary<{ state: string }>("GetDeployment", { deploymentId: d.id })).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await dep.uploadCode("web", Buffer.from("not a bundle"))).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      dep.close();
      view.close();
    }
  });

  it("health stays open without a token; plaintext or an untrusted CA cannot connect", async () => {
    expect(await healthStatus(stack.address, grpc.credentials.createSsl(certs.ca))).toBe("SERVING");
    const plain = rawClient(stack.address, { token: DEPLOYER });
    const other = makeCertificates();
    const untrusted = rawClient(stack.address, { ca: other.ca, token: DEPLOYER });
    try {
      expect(await plain.code("ListDeployments", {})).toBe(grpc.status.UNAVAILABLE);
      expect(await untrusted.code("ListDeployments", {})).toBe(grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
      untrusted.close();
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it("deployctl: --ca and --token (or DEPLOY_CA / DEPLOY_TOKEN); a missing token exits 2 UNAUTHENTICATED", async () => {
    const ok = await runCli(["agents", "--coordinator", stack.address, "--ca", certs.caFile, "--token", VIEWER, "--json"], {});
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("a1");
    const viaEnv = await runCli(["list", "--coordinator", stack.address, "--json"], { DEPLOY_CA: certs.caFile, DEPLOY_TOKEN: VIEWER });
    expect(viaEnv.code).toBe(0);
    const noToken = await runCli(["list", "--coordinator", stack.address, "--ca", certs.caFile], {});
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/UNAUTHENTICATED/);
    const dep = rawClient(stack.address, { ca: certs.ca, token: DEPLOYER });
    const d = await dep.unary<{ id: string }>("CreateDeployment", { requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v2" } });
    dep.close();
    const viewerCancel = await runCli(["cancel", d.id, "--coordinator", stack.address, "--ca", certs.caFile], { DEPLOY_TOKEN: VIEWER });
    expect(viewerCancel.code).toBe(2);
    expect(viewerCancel.stderr).toMatch(/PERMISSION_DENIED/);
  });

  it("tokens never reach the coordinator's log", () => {
    const logs = stack.coordinators[0]!.logs();
    expect(logs).toContain("call refused");
    expect(logs).not.toContain(DEPLOYER);
    expect(logs).not.toContain(VIEWER);
    expect(logs).not.toContain("plaintext gRPC");
  });
});

describe("mutual TLS", () => {
  let stack: Stack;
  let certs: ReturnType<typeof makeCertificates>;
  beforeAll(async () => {
    certs = makeCertificates();
    stack = await Stack.start({
      agents: [],
      coordinatorEnv: {
        DEPLOY_GRPC_TLS_CERT: certs.serverCert,
        DEPLOY_GRPC_TLS_KEY: certs.serverKey,
        DEPLOY_GRPC_TLS_CLIENT_CA: certs.caFile,
        DEPLOY_GRPC_TOKENS: `ci:deployer:${hashToken(DEPLOYER)}`,
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it("a client without a certificate cannot connect; with one it can", async () => {
    const without = rawClient(stack.address, { ca: certs.ca, token: DEPLOYER });
    const withCert = rawClient(stack.address, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, token: DEPLOYER });
    try {
      expect(await without.code("ListDeployments", {})).toBe(grpc.status.UNAVAILABLE);
      expect(await withCert.code("ListDeployments", {})).toBe(grpc.status.OK);
    } finally {
      without.close();
      withCert.close();
    }
  });
});

describe("insecure mode and the production guard", () => {
  it("by default: plaintext without authentication, with a warning", async () => {
    const stack = await Stack.start({ agents: [] });
    try {
      expect(stack.coordinators[0]!.logs()).toContain("plaintext gRPC without authentication");
      const c = rawClient(stack.address);
      expect(await c.code("ListDeployments", {})).toBe(grpc.status.OK);
      c.close();
    } finally {
      await stack.stop();
    }
  });

  it("production mode (the default) without TLS: the coordinator refuses to start (exit 2), naming the keys", async () => {
    const child = spawn(process.execPath, [COORDINATOR_MAIN], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DEPLOY_GRPC_TOKENS: `x:viewer:${hashToken("t")}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code).toBe(2);
    expect(stderr).toMatch(/grpc\.tls\.certFile/);
  });

  it("a token in clear text where a hash belongs is refused at start", async () => {
    const child = spawn(process.execPath, [COORDINATOR_MAIN], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DEPLOY_GRPC_TOKENS: "ci:deployer:my-secret-token" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    expect(await new Promise<number | null>((r) => child.on("exit", r))).toBe(2);
    expect(stderr).toMatch(/sha256/);
    expect(stderr).not.toContain("my-secret-token");
  });
});
