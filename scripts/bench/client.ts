// A small promisified DeployService client (scripts cannot import test/helpers).
import * as grpc from "@grpc/grpc-js";
import { loadDeployProto, type CreateDeploymentRequestInput, type DeploymentEventMsg, type DeploymentMsg } from "../../services/shared/src/proto.js";

export type { DeploymentMsg, DeploymentEventMsg };

type Raw = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export class BenchClient {
  readonly raw: Raw;
  constructor(address: string) {
    const { proto } = loadDeployProto();
    this.raw = new proto.deploy.v1.DeployService(address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    }) as unknown as Raw;
  }

  #unary<Res>(method: string, req: object, deadlineMs = 60_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
      fn.call(this.raw, req, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  }

  create(req: CreateDeploymentRequestInput): Promise<DeploymentMsg> {
    return this.#unary("CreateDeployment", req);
  }
  get(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId });
  }
  agents(req: { app?: string; environment?: string }): Promise<{ agents: { id: string; live: boolean }[] }> {
    return this.#unary("ListAgents", req);
  }

  /** Resolves when the server ends the stream (after the terminal event); counts events. */
  watch(deploymentId: string, onEvent: (e: DeploymentEventMsg) => void = () => undefined): Promise<void> {
    const call = (this.raw.WatchDeployment as (req: object) => grpc.ClientReadableStream<DeploymentEventMsg>).call(this.raw, {
      deploymentId,
      afterSequence: "0",
    });
    return new Promise<void>((resolve, reject) => {
      call.on("data", onEvent);
      call.on("end", () => resolve());
      call.on("error", reject);
    });
  }

  close(): void {
    this.raw.close();
  }
}
