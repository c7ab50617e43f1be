// A small promisified DeployService client (scripts cannot import test/helpers).
import * as grpc from "@grpc/grpc-js";
import { loadDeployProto, type CreateDeploymentRequestInput, type DeploymentEventMsg, type DeploymentMsg } from "../../services/shared/src/proto.js";

export type { DeploymentMsg, DeploymentEventMsg };

type Raw = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** TLS and a bearer token, for a coordinator in production mode (security.ts). */
export interface BenchClientOptions {
  ca: Buffer;
  token: string;
  /** The name the server certificate is for (the client connects to 127.0.0.1). */
  servername: string;
}

export class BenchClient {
  readonly raw: Raw;
  readonly #metadata: grpc.Metadata;
  constructor(address: string, secure?: BenchClientOptions) {
    const { proto } = loadDeployProto();
    this.#metadata = new grpc.Metadata();
    if (secure) this.#metadata.set("authorization", `Bearer ${secure.token}`);
    this.raw = new proto.deploy.v1.DeployService(address, secure ? grpc.credentials.createSsl(secure.ca) : grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      ...(secure ? { "grpc.ssl_target_name_override": secure.servername, "grpc.default_authority": secure.servername } : {}),
    }) as unknown as Raw;
  }

  #unary<Res>(method: string, req: object, deadlineMs = 60_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method] as (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
      fn.call(this.raw, req, this.#metadata, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  }

  create(req: CreateDeploymentRequestInput): Promise<DeploymentMsg> {
    return this.#unary("CreateDeployment", req);
  }
  get(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId });
  }
  /** A few of the deployment's targets in `targetState` (a failure names what went wrong). */
  targetsIn(deploymentId: string, targetState: string, pageSize = 5): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId, targetState, pageSize });
  }
  /** Every agent of the filter, page after page (a page is at most ~2 MiB: 10,000 agents take 2 or 3). */
  async agents(req: { app?: string; environment?: string }): Promise<{ agents: { id: string; live: boolean }[] }> {
    const agents: { id: string; live: boolean }[] = [];
    let pageToken = "";
    do {
      const page: { agents?: { id: string; live: boolean }[]; nextPageToken?: string } = await this.#unary("ListAgents", { ...req, pageSize: 10_000, pageToken });
      agents.push(...(page.agents ?? []));
      pageToken = page.nextPageToken ?? "";
    } while (pageToken !== "");
    return { agents };
  }

  /** Resolves when the server ends the stream (after the terminal event); counts events. */
  watch(deploymentId: string, onEvent: (e: DeploymentEventMsg) => void = () => undefined): Promise<void> {
    const call = (this.raw.WatchDeployment as (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<DeploymentEventMsg>).call(
      this.raw,
      { deploymentId, afterSequence: "0" },
      this.#metadata,
    );
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
