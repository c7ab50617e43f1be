// Who did what (issue 18 item 4): requested_by and the canceller come from
// the authenticated identity — the bearer token's name, or with mutual TLS
// and no token the client certificate's CN — never from what the client
// wrote, which is kept apart as a note. Real coordinator, agents and NATS;
// the audit log is read back from DEPLOY_EVENTS.
import { rmSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bindContext,
  connectNats,
  encode,
  foldAll,
  makeEvent,
  parseEvent,
  readEvents,
  requesterOf,
  ValidationError,
  type DeployEvent,
  type DeploymentSpec,
  type JsContext,
  type StoredEvent,
} from "../services/shared/src/index.js";
import type { DeploymentEventMsg, DeploymentMsg } from "../services/shared/src/proto.js";
import { hashToken } from "../services/coordinator/src/grpc/auth.js";
import { toDeploymentMessage, toEventMessage } from "../services/coordinator/src/grpc/convert.js";
import { runCli } from "./helpers/deployctl.js";
import { makeCertificates, rawClient, uniq, type GrpcClient } from "./helpers/security.js";
import { Stack } from "./helpers/stack.js";

const CI = `ci-${uniq("t")}-secret`;
const OPS = `ops-${uniq("t")}-secret`;
const VIEWER = `viewer-${uniq("t")}-secret`;

/** Every event of a deployment, until its terminal one, over an authenticated (or TLS) client. */
function watchAll(c: GrpcClient, deploymentId: string): Promise<DeploymentEventMsg[]> {
  const out: DeploymentEventMsg[] = [];
  const call = (c.raw.WatchDeployment as (req: object, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<DeploymentEventMsg>).call(
    c.raw,
    { deploymentId, afterSequence: "0" },
    c.metadata(),
    { deadline: Date.now() + 60_000 },
  );
  return new Promise((resolve, reject) => {
    call.on("data", (e: DeploymentEventMsg) => out.push(e));
    call.on("end", () => resolve(out));
    call.on("error", reject);
  });
}

/** The deployment's events as stored in DEPLOY_EVENTS (the audit log), parsed by the one event reader. */
async function auditLog(ctx: JsContext, deploymentId: string): Promise<DeployEvent[]> {
  const out: DeployEvent[] = [];
  for await (const e of readEvents(ctx, deploymentId, { afterSeq: 0 })) {
    if (e.invalid !== undefined) throw new Error(`unreadable event ${e.seq}: ${e.invalid}`);
    out.push(e.event);
  }
  return out;
}

async function waitTerminal(c: GrpcClient, id: string): Promise<DeploymentMsg> {
  for (const until = Date.now() + 60_000; ; ) {
    const d = await c.unary<DeploymentMsg>("GetDeployment", { deploymentId: id });
    if (["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"].includes(d.state ?? "")) return d;
    if (Date.now() > until) throw new Error(`deployment ${id} not terminal: ${d.state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const cliEnv = (stack: Stack, token: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? "/tmp",
  DEPLOY_COORDINATOR: stack.address,
  DEPLOY_TOKEN: token,
  NO_COLOR: "1",
});

describe("who did what, with bearer tokens", () => {
  let stack: Stack;
  let nc: NatsConnection;
  let ctx: JsContext;
  let ci: GrpcClient;
  let ops: GrpcClient;
  let viewer: GrpcClient;
  beforeAll(async () => {
    stack = await Stack.start({
      agents: ["a1", "a2"],
      coordinatorEnv: { DEPLOY_GRPC_TOKENS: `ci:deployer:${hashToken(CI)},ops:deployer:${hashToken(OPS)},dash:viewer:${hashToken(VIEWER)}` },
    });
    nc = await connectNats({ url: stack.nats.url, name: "audit-test" });
    ctx = await bindContext(nc);
    ci = rawClient(stack.address, { token: CI });
    ops = rawClient(stack.address, { token: OPS });
    viewer = rawClient(stack.address, { token: VIEWER });
  });
  afterAll(async () => {
    for (const c of [ci, ops, viewer]) c?.close();
    await nc?.close();
    await stack?.stop();
  });

  it("a token-authenticated create records the token's name as requested_by and keeps the client's text apart as a note", async () => {
    const requestId = uniq("r");
    const req = { requestId, app: "web", environment: "prod", changeset: { version: "v1" }, targets: ["a1"], requestedBy: "root (trust me)" };
    const d = await ci.unary<DeploymentMsg>("CreateDeployment", req);
    expect(d.requestedBy).toBe("ci");
    expect(d.requestedByNote).toBe("root (trust me)");

    // The same client retrying is the same request: the same deployment.
    expect((await ci.unary<DeploymentMsg>("CreateDeployment", req)).id).toBe(d.id);
    // Another identity re-using the request id, even with the same body, is not a retry.
    const other = await ops.unary("CreateDeployment", req).catch((e: unknown) => e as grpc.ServiceError);
    expect((other as grpc.ServiceError).code).toBe(grpc.status.ALREADY_EXISTS);
    expect((other as grpc.ServiceError).details).toMatch(/already used by another caller/);

    const done = await waitTerminal(viewer, d.id!);
    expect(done).toMatchObject({ requestedBy: "ci", requestedByNote: "root (trust me)", cancelledBy: "" });
    const listed = (await viewer.unary<{ deployments: DeploymentMsg[] }>("ListDeployments", { pageSize: 200 })).deployments.find((x) => x.id === d.id);
    expect(listed).toMatchObject({ requestedBy: "ci", requestedByNote: "root (trust me)" });

    const created = (await watchAll(viewer, d.id!)).find((e) => e.type === "deployment.created")!;
    expect(created.actor).toBe("ci");
    expect(created.message).toContain("requested by ci (note: root (trust me))");

    // The audit log says who, from the token, and what the client wrote, apart.
    const log = await auditLog(ctx, d.id!);
    const spec = (log[0] as Extract<DeployEvent, { type: "deployment.created" }>).spec;
    expect(spec).toMatchObject({ requestedBy: "ci", requestedByVia: "token", requestedByNote: "root (trust me)" });
  });

  it("a cancel records who asked, in the event, the deployment and deployctl get", async () => {
    // a1 applies for a while, so the cancel finds the deployment running.
    await stack.control("a1", { sleep: 5 });
    try {
      const d = await ci.unary<DeploymentMsg>("CreateDeployment", {
        requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v2" }, targets: ["a1", "a2"], requestedBy: "release train 42",
      });
      const cancelled = await ops.unary<DeploymentMsg>("CancelDeployment", { deploymentId: d.id, reason: "wrong build" });
      expect(cancelled.cancelRequested).toBe(true);
      expect(cancelled.cancelledBy).toBe("ops");
      const done = await waitTerminal(viewer, d.id!);
      expect(done).toMatchObject({ state: "DEPLOYMENT_STATE_CANCELLED", requestedBy: "ci", cancelledBy: "ops" });

      const log = await auditLog(ctx, d.id!);
      const cancel = log.find((e) => e.type === "deployment.cancel_requested");
      expect(cancel).toMatchObject({ reason: "wrong build", by: "ops", byVia: "token" });
      const watched = (await watchAll(viewer, d.id!)).find((e) => e.type === "deployment.cancel_requested")!;
      expect(watched).toMatchObject({ actor: "ops", message: "wrong build" });

      const get = await runCli(["get", d.id!], { env: cliEnv(stack, VIEWER) });
      expect(get.stderr).toBe("");
      expect(get.code).toBe(0);
      expect(get.stdout).toContain("requested by ci (note: release train 42)");
      expect(get.stdout).toContain("cancel requested by ops");
    } finally {
      await stack.control("a1", { sleep: 5 }, false);
    }
  });

  it("deployctl deploy --note: the note is recorded beside the token's name", async () => {
    const r = await runCli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v3", "--targets", "a2", "--note", "hotfix for INC-7", "--detach", "--json"], {
      env: cliEnv(stack, CI),
    });
    expect(r.code, r.stderr).toBe(0);
    const id = /"id":\s*"(d-[^"]+)"/.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();
    const d = await waitTerminal(viewer, id!);
    expect(d).toMatchObject({ requestedBy: "ci", requestedByNote: "hotfix for INC-7" });
  });
});

describe("who did what, with mutual TLS and no token", () => {
  let stack: Stack;
  let certs: ReturnType<typeof makeCertificates>;
  let nc: NatsConnection;
  let ctx: JsContext;
  beforeAll(async () => {
    certs = makeCertificates();
    stack = await Stack.start({
      agents: ["a1"],
      coordinatorEnv: { DEPLOY_GRPC_TLS_CERT: certs.serverCert, DEPLOY_GRPC_TLS_KEY: certs.serverKey, DEPLOY_GRPC_TLS_CLIENT_CA: certs.caFile },
    });
    nc = await connectNats({ url: stack.nats.url, name: "audit-test-mtls" });
    ctx = await bindContext(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it("requested_by and the canceller are the client certificate's subject (CN=deployctl)", async () => {
    const c = rawClient(stack.address, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    await stack.control("a1", { sleep: 5 });
    try {
      const d = await c.unary<DeploymentMsg>("CreateDeployment", {
        requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v1" }, requestedBy: "someone else entirely",
      });
      expect(d).toMatchObject({ requestedBy: "deployctl", requestedByNote: "someone else entirely" });
      const cancelled = await c.unary<DeploymentMsg>("CancelDeployment", { deploymentId: d.id, reason: "stop" });
      expect(cancelled.cancelledBy).toBe("deployctl");
      const log = await auditLog(ctx, d.id!);
      expect((log[0] as Extract<DeployEvent, { type: "deployment.created" }>).spec).toMatchObject({ requestedBy: "deployctl", requestedByVia: "certificate" });
      expect(log.find((e) => e.type === "deployment.cancel_requested")).toMatchObject({ by: "deployctl", byVia: "certificate" });
      expect(await waitTerminal(c, d.id!)).toMatchObject({ requestedBy: "deployctl", cancelledBy: "deployctl" });
    } finally {
      c.close();
      await stack.control("a1", { sleep: 5 }, false);
    }
  });
});

describe("events from before identities were recorded", () => {
  const time = new Date(0).toISOString();
  const spec: DeploymentSpec = {
    id: "d-old",
    requestId: "r-old",
    requestHash: "h",
    app: "web",
    environment: "prod",
    changeset: { version: "v1" },
    strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 1000 },
    targets: ["a1"],
    requestedBy: "tester",
  };
  const stored = (seq: number, e: DeployEvent): StoredEvent => ({ seq, time, source: "coordinator", event: parseEvent(encode(e)) });

  it("still parse; their free text shows as the note, the identity as unknown, the canceller as empty", () => {
    const old = [stored(1, makeEvent("d-old", { type: "deployment.created", spec })), stored(2, makeEvent("d-old", { type: "deployment.cancel_requested", reason: "x" }))];
    expect(old[1]!.event).not.toHaveProperty("by");
    const rec = foldAll(old)!;
    expect(rec.cancelRequested).toBe(true);
    expect(rec.cancelledBy).toBeUndefined();
    expect(requesterOf(rec.spec)).toEqual({ identity: "", note: "tester" });
    expect(toDeploymentMessage(rec)).toMatchObject({ requestedBy: "", requestedByNote: "tester", cancelledBy: "" });
    expect(toEventMessage(old[1]!, rec, undefined).actor).toBe("");
  });

  it("new ones read back as written; a bad identity source is refused naming the field", () => {
    const created = makeEvent("d-new", { type: "deployment.created", spec: { ...spec, id: "d-new", requestedBy: "ci", requestedByVia: "token", requestedByNote: "n" } });
    expect(parseEvent(encode(created))).toEqual(created);
    const cancel = makeEvent("d-new", { type: "deployment.cancel_requested", reason: "", by: "CN x", byVia: "certificate" });
    expect(parseEvent(encode(cancel))).toEqual(cancel);
    expect(() => parseEvent(encode({ ...cancel, byVia: "root" }))).toThrow(ValidationError);
    expect(() => parseEvent(encode({ ...cancel, byVia: "root" }))).toThrow(/event\.byVia/);
    const createdSpec = (created as Extract<DeployEvent, { type: "deployment.created" }>).spec;
    expect(() => parseEvent(encode({ ...created, spec: { ...createdSpec, requestedByVia: "x" } }))).toThrow(/event\.spec\.requestedByVia/);
  });
});
