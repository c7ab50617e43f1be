// Shared by the security and fuzz tests: hand-made (signed or forged)
// commands, gRPC clients with tokens and TLS, self-signed certificates.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { loadDeployProto } from "../../services/shared/src/proto.js";
import { HDR_SIGNATURE, HDR_SIGNER } from "../../services/shared/src/signing.js";
import { parseEvent, type DeployEvent } from "../../services/shared/src/schemas.js";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let counter = 0;
export const uniq = (p: string): string => `${p}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

export interface Key {
  seed: string;
  publicKey: string;
}

export function newKey(): Key {
  const kp = createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

export function signWith(seed: string, data: Uint8Array): string {
  return Buffer.from(fromSeed(new TextEncoder().encode(seed)).sign(data)).toString("base64url");
}

export function commandBytes(agentId: string, deploymentId: string, over: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schema: "deploy.command.v1",
      deploymentId,
      agentId,
      app: "web",
      environment: "prod",
      changeset: { version: "v1" },
      applyTimeoutMs: 60_000,
      issuedAt: new Date().toISOString(),
      ...over,
    }),
  );
}

/** Publishes a command by hand, with whatever signature headers the test wants. */
export async function publishRaw(nc: NatsConnection, subject: string, data: Uint8Array, sig?: { signer?: string; signature?: string }): Promise<void> {
  const { jetstream } = await import("@nats-io/jetstream");
  const h = headers();
  if (sig?.signer !== undefined) h.set(HDR_SIGNER, sig.signer);
  if (sig?.signature !== undefined) h.set(HDR_SIGNATURE, sig.signature);
  await jetstream(nc).publish(subject, data, { headers: h });
}

export async function lastBySubject(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { last_by_subj: subject });
  } catch (err) {
    if (/no message found/i.test(String(err))) return null;
    throw err;
  }
}

/** The command of `deploymentId` on agent `agentId`'s command queue (deploy.cmd.<agent>.queue), by its Deploy-Id header; null when there is none. */
export async function queuedCommand(jsm: JetStreamManager, agentId: string, deploymentId: string): Promise<StoredMsg | null> {
  const subject = `deploy.cmd.${agentId}.queue`;
  const { first_seq, last_seq } = (await jsm.streams.info("DEPLOY_COMMANDS")).state;
  for (let seq = first_seq; seq <= last_seq; seq++) {
    const m = await jsm.streams.getMessage("DEPLOY_COMMANDS", { seq }).catch(() => null);
    if (m?.subject === subject && m.header.get("Deploy-Id") === deploymentId) return m;
  }
  return null;
}

/** The last event agent `agentId` wrote about `deploymentId`, once there is one. */
export async function waitAgentEvent(jsm: JetStreamManager, deploymentId: string, agentId: string, timeoutMs = 30_000): Promise<DeployEvent> {
  let event: DeployEvent | undefined;
  await waitFor(`an event from ${agentId} about ${deploymentId}`, async () => {
    const m = await lastBySubject(jsm, "DEPLOY_EVENTS", `deploy.evt.${deploymentId}.${agentId}`);
    if (m) event = parseEvent(m.data);
    // A start that won is followed by what the agent made of it.
    return event !== undefined && event.type !== "target.started";
  }, timeoutMs);
  return event!;
}

/** A raw DeployService client with optional token and TLS. */
export function rawClient(address: string, o: { token?: string; ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } = {}): GrpcClient {
  const { proto } = loadDeployProto();
  const creds = o.ca ? grpc.credentials.createSsl(o.ca, o.key ?? null, o.cert ?? null) : grpc.credentials.createInsecure();
  const raw = new proto.deploy.v1.DeployService(address, creds, o.servername ? { "grpc.ssl_target_name_override": o.servername } : {}) as unknown as grpc.Client &
    Record<string, (...args: unknown[]) => unknown>;
  return new GrpcClient(raw, o.token);
}

export class GrpcClient {
  constructor(
    readonly raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>,
    private readonly token?: string,
  ) {}

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }

  unary<Res = Record<string, unknown>>(method: string, req: object, deadlineMs = 10_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
      fn.call(this.raw, req, this.metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  }

  /** Status code of a unary call (0 = OK). */
  async code(method: string, req: object): Promise<number> {
    try {
      await this.unary(method, req);
      return grpc.status.OK;
    } catch (err) {
      return (err as grpc.ServiceError).code;
    }
  }

  /** Status code a WatchDeployment ends with (0 = OK). */
  watchCode(deploymentId: string): Promise<number> {
    return new Promise((resolve) => {
      const call = (this.raw.WatchDeployment as (req: object, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<unknown>).call(
        this.raw,
        { deploymentId, afterSequence: "0" },
        this.metadata(),
        { deadline: Date.now() + 10_000 },
      );
      call.on("data", () => undefined);
      call.on("status", (s: grpc.StatusObject) => resolve(s.code));
      call.on("error", () => undefined);
    });
  }

  /** Status code of an UploadArtifact of `data`. */
  uploadCode(name: string, data: Buffer): Promise<number> {
    return new Promise((resolve) => {
      const fn = this.raw.UploadArtifact as (md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object>;
      const call = fn.call(this.raw, this.metadata(), { deadline: Date.now() + 10_000 }, (e) => resolve(e ? e.code : 0));
      call.on("error", () => undefined);
      call.write({ header: { name } });
      if (data.length > 0) call.write({ chunk: data });
      call.end();
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** A self-signed CA and a server certificate for 127.0.0.1/localhost, and a client certificate, made with openssl. */
export function makeCertificates(): { dir: string; ca: Buffer; serverCert: string; serverKey: string; caFile: string; clientCert: Buffer; clientKey: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "deploy-tls-"));
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=deploy test CA");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext");
  writeFileSync(join(dir, "client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=deployctl");
  run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext");
  return {
    dir,
    ca: readFileSync(join(dir, "ca.pem")),
    caFile: join(dir, "ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    clientCert: readFileSync(join(dir, "client.pem")),
    clientKey: readFileSync(join(dir, "client.key")),
  };
}
