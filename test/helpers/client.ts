// A promisified DeployService client for tests and scripts.
import * as grpc from "@grpc/grpc-js";
import { until } from "./wait.js";
import { loadDeployProto, type DeploymentEventMsg, type DeploymentMsg, type CreateDeploymentRequestInput } from "../../services/shared/src/proto.js";

export type { DeploymentEventMsg, DeploymentMsg };

export class DeployClient {
  readonly raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  constructor(readonly address: string) {
    const { proto } = loadDeployProto();
    this.raw = new proto.deploy.v1.DeployService(address, grpc.credentials.createInsecure()) as unknown as DeployClient["raw"];
  }

  /** Any unary method by name (one this class has no wrapper for: CordonAgent, ListAgents, …). */
  call<Res>(method: string, req: object, deadlineMs = 10_000): Promise<Res> {
    return this.#unary(method, req, deadlineMs);
  }

  #unary<Res>(method: string, req: object, deadlineMs = 10_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
      fn.call(this.raw, req, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  }

  create(req: CreateDeploymentRequestInput, deadlineMs?: number): Promise<DeploymentMsg> {
    return this.#unary("CreateDeployment", req, deadlineMs);
  }
  get(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId });
  }
  list(req: { app?: string; environment?: string; state?: string; agentId?: string; pageSize?: number; pageToken?: string } = {}): Promise<{ deployments: DeploymentMsg[]; nextPageToken: string }> {
    return this.#unary("ListDeployments", req);
  }
  cancel(deploymentId: string, reason = ""): Promise<DeploymentMsg> {
    return this.#unary("CancelDeployment", { deploymentId, reason });
  }
  release(app: string, environment: string): Promise<{ desired?: { deploymentId?: string; version?: string }; history?: { deploymentId?: string; version?: string }[] }> {
    return this.#unary("GetRelease", { app, environment });
  }
  pause(deploymentId: string, reason = ""): Promise<DeploymentMsg> {
    return this.#unary("PauseDeployment", { deploymentId, reason });
  }
  resume(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("ResumeDeployment", { deploymentId });
  }
  promote(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("PromoteDeployment", { deploymentId });
  }
  rollback(req: { requestId: string; app: string; environment: string; strategy?: object; requestedBy?: string; to?: string }): Promise<DeploymentMsg> {
    return this.#unary("RollbackRelease", req);
  }
  agents(req: { app?: string; environment?: string } = {}): Promise<{ agents: { id: string; live: boolean; apps: string[]; environment: string; currentReleases: Record<string, string> }[] }> {
    return this.#unary("ListAgents", req);
  }

  /** Opens a watch; events are pushed to onEvent; resolves when the server ends the stream. */
  watch(deploymentId: string, afterSequence = 0, onEvent: (e: DeploymentEventMsg) => void = () => undefined): { done: Promise<void>; cancel: () => void } {
    const call = (this.raw.WatchDeployment as (req: object) => grpc.ClientReadableStream<DeploymentEventMsg>).call(this.raw, {
      deploymentId,
      afterSequence: String(afterSequence),
    });
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", onEvent);
      call.on("end", () => resolve());
      call.on("error", (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? resolve() : reject(e)));
    });
    return { done, cancel: () => call.cancel() };
  }

  /** All events after `afterSequence` until the terminal one. */
  async events(deploymentId: string, afterSequence = 0): Promise<DeploymentEventMsg[]> {
    const out: DeploymentEventMsg[] = [];
    await this.watch(deploymentId, afterSequence, (e) => out.push(e)).done;
    return out;
  }

  /** Polls GetDeployment until the deployment is terminal (or the timeout passes). */
  async waitTerminal(deploymentId: string, timeoutMs = 60_000): Promise<DeploymentMsg> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const d = await this.get(deploymentId).catch(() => undefined);
      if (d && ["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"].includes(d.state ?? "")) return d;
      if (Date.now() > until) throw new Error(`deployment ${deploymentId} not terminal after ${timeoutMs} ms: ${JSON.stringify(d?.state)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Streams `data` to UploadArtifact in 64 KiB chunks. */
  upload(name: string, data: Buffer, digest?: string, app?: string): Promise<{ app?: string; name: string; digest: string; size: string; hooks?: string[] }> {
    return new Promise((resolve, reject) => {
      const fn = this.raw.UploadArtifact as (opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { name: string; digest: string; size: string; hooks?: string[] }) => void) => grpc.ClientWritableStream<object>;
      const call = fn.call(this.raw, { deadline: Date.now() + 60_000 }, (e, r) => (e ? reject(e) : resolve(r)));
      call.write({ header: { name, ...(digest ? { digest } : {}), ...(app ? { app } : {}) } });
      for (let i = 0; i < data.length; i += 64 * 1024) call.write({ chunk: data.subarray(i, i + 64 * 1024) });
      call.end();
    });
  }
  getArtifact(name: string, digest: string, app?: string): Promise<{ app?: string; name: string; digest: string; size: string; hooks?: string[] }> {
    return this.#unary("GetArtifact", { name, digest, ...(app ? { app } : {}) });
  }
  listArtifacts(name?: string, app?: string): Promise<{ artifacts?: { app?: string; name: string; digest: string; size: string }[] }> {
    return this.#unary("ListArtifacts", { ...(name ? { name } : {}), ...(app ? { app } : {}) });
  }

  close(): void {
    this.raw.close();
  }
}

/** Awaits a call that must fail and returns its gRPC error. */
export async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** The convergence deployment that brought `agentId` to the release of deployment `desiredId`, once it SUCCEEDED (waits up to 30 s). */
export function convergedTo(client: DeployClient, agentId: string, desiredId: string): Promise<DeploymentMsg> {
  return until(`${agentId} converged`, async () => {
    const d = (await client.list({ pageSize: 200 })).deployments.find((x) => x.convergesTo === desiredId && x.targets?.[0]?.agentId === agentId);
    return d && d.state === "DEPLOYMENT_STATE_SUCCEEDED" ? d : undefined;
  }, 30_000);
}
