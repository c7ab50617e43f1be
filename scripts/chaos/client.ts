// The suite's gRPC client (a trimmed copy of test/helpers/client.ts).
import * as grpc from "@grpc/grpc-js";
import { loadDeployProto, type CreateDeploymentRequestInput, type DeploymentMsg } from "../../services/shared/src/proto.js";

export type { DeploymentMsg };

type Raw = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export class ChaosClient {
  readonly #raw: Raw;
  constructor(readonly address: string) {
    const { proto } = loadDeployProto();
    this.#raw = new proto.deploy.v1.DeployService(address, grpc.credentials.createInsecure()) as unknown as Raw;
  }

  #unary<Res>(method: string, req: object, deadlineMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.#raw[method] as (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
      fn.call(this.#raw, req, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  }

  create(req: CreateDeploymentRequestInput, deadlineMs = 10_000): Promise<DeploymentMsg> {
    return this.#unary("CreateDeployment", req, deadlineMs);
  }
  cancel(deploymentId: string, reason: string, ask: { revert?: boolean; kill?: boolean } = {}, deadlineMs = 5000): Promise<DeploymentMsg> {
    return this.#unary("CancelDeployment", { deploymentId, reason, ...(ask.revert ? { revert: true } : {}), ...(ask.kill ? { killRunning: true } : {}) }, deadlineMs);
  }
  get(deploymentId: string, deadlineMs = 5000): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId }, deadlineMs);
  }
  agents(req: { app?: string; environment?: string }, deadlineMs = 5000): Promise<{ agents?: { id: string }[] }> {
    return this.#unary("ListAgents", req, deadlineMs);
  }
  /** Streams a bundle to UploadArtifact in 64 KiB chunks; its digest. */
  upload(name: string, data: Buffer, deadlineMs = 10_000): Promise<{ digest: string; size: string }> {
    return new Promise((resolve, reject) => {
      const fn = this.#raw["UploadArtifact"] as (opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { digest: string; size: string }) => void) => grpc.ClientWritableStream<object>;
      const call = fn.call(this.#raw, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
      call.write({ header: { name } });
      for (let i = 0; i < data.length; i += 64 * 1024) call.write({ chunk: data.subarray(i, i + 64 * 1024) });
      call.end();
    });
  }
  close(): void {
    this.#raw.close();
  }
}
