// The DeployService client deployctl uses: every unary call has a deadline,
// and calls failing with UNAVAILABLE or DEADLINE_EXCEEDED are retried with
// exponential backoff inside a bounded budget. Retrying is safe: creation
// and rollback carry a request id; cancel, pause, resume and promote are
// idempotent; and uploading identical content again is a no-op on the server.
import { createReadStream } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { loadDeployProto, protoTime, type DeployServiceClient, type DeploymentEventMsg, type DeploymentMsg, type CreateDeploymentRequestInput } from "../../shared/src/proto.js";
import type { Artifact__Output } from "../../shared/src/gen/deploy/v1/Artifact.js";
import type { GetReleaseResponse__Output } from "../../shared/src/gen/deploy/v1/GetReleaseResponse.js";
import type { ListAgentsResponse__Output } from "../../shared/src/gen/deploy/v1/ListAgentsResponse.js";
import type { Agent__Output } from "../../shared/src/gen/deploy/v1/Agent.js";
import type { ListArtifactsResponse__Output } from "../../shared/src/gen/deploy/v1/ListArtifactsResponse.js";
import type { ListDeploymentsRequest } from "../../shared/src/gen/deploy/v1/ListDeploymentsRequest.js";
import type { RollbackReleaseRequest } from "../../shared/src/gen/deploy/v1/RollbackReleaseRequest.js";
import type { ListDeploymentsResponse__Output } from "../../shared/src/gen/deploy/v1/ListDeploymentsResponse.js";
import type { EnvironmentFreeze__Output } from "../../shared/src/gen/deploy/v1/EnvironmentFreeze.js";
import type { ListFreezesResponse__Output } from "../../shared/src/gen/deploy/v1/ListFreezesResponse.js";
import type { EnvironmentPolicy__Output } from "../../shared/src/gen/deploy/v1/EnvironmentPolicy.js";
import type { ListEnvironmentPoliciesResponse__Output } from "../../shared/src/gen/deploy/v1/ListEnvironmentPoliciesResponse.js";
import { UnreachableError, isRetryable } from "./errors.js";

export type { DeploymentEventMsg, DeploymentMsg };
export type ArtifactMsg = Artifact__Output;
export type AgentsMsg = ListAgentsResponse__Output;
export type AgentMsg = Agent__Output;
export type ArtifactsMsg = ListArtifactsResponse__Output;
export type DeploymentsMsg = ListDeploymentsResponse__Output;
export type ReleaseMsg = GetReleaseResponse__Output;
export type FreezeMsg = EnvironmentFreeze__Output;
export type FreezesMsg = ListFreezesResponse__Output;
export type PolicyMsg = EnvironmentPolicy__Output;
export type PoliciesMsg = ListEnvironmentPoliciesResponse__Output;

/** 64 KiB: well under gRPC's 4 MiB message limit, small enough to keep memory flat. */
export const UPLOAD_CHUNK_BYTES = 64 * 1024;

export interface ClientOptions {
  address: string;
  /** Deadline of one unary call. */
  callTimeoutMs: number;
  /** Total time retries of one call may take (the last attempt may run one deadline past it). */
  retryBudgetMs: number;
  /** Attempts of one call, the first included. */
  maxAttempts: number;
  /** Sent as "authorization: Bearer <token>" on every call. */
  token?: string;
  /** TLS (system CAs unless `ca`); a client certificate when `cert` and `key`. Absent: plaintext. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

export const DEFAULT_CLIENT_OPTIONS: Omit<ClientOptions, "address"> = {
  // CreateDeployment answers once JetStream has recorded the deployment
  // (a few JetStream round trips, each limited to 5 s on the server).
  callTimeoutMs: 15_000,
  retryBudgetMs: 20_000,
  maxAttempts: 6,
};

const INITIAL_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 4_000;

/** Exponential backoff with jitter inside a time budget; throws UnreachableError when it runs out. */
export class Backoff {
  #attempt = 0;
  #started = Date.now();
  constructor(private readonly opts: ClientOptions) {}

  reset(): void {
    this.#attempt = 0;
    this.#started = Date.now();
  }

  /** Waits before the next attempt after `err`, or throws if no attempt is left. */
  async wait(err: grpc.ServiceError, signal?: AbortSignal): Promise<void> {
    this.#attempt++;
    const elapsed = Date.now() - this.#started;
    const base = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (this.#attempt - 1));
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    if (this.#attempt >= this.opts.maxAttempts || elapsed + delay > this.opts.retryBudgetMs) {
      throw new UnreachableError(err, this.#attempt, elapsed, this.opts.address);
    }
    await pause(delay, signal);
  }
}

/** Waits `ms`, or less when `signal` aborts; leaves no listener on it (a follow that waits for an hour pauses 1,800 times). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

type UnaryMethod =
  | "CreateDeployment"
  | "GetDeployment"
  | "ListDeployments"
  | "CancelDeployment"
  | "PauseDeployment"
  | "ResumeDeployment"
  | "PromoteDeployment"
  | "RollbackRelease"
  | "RevertDeployment"
  | "ListAgents"
  | "CordonAgent"
  | "UncordonAgent"
  | "DeregisterAgent"
  | "FreezeEnvironment"
  | "UnfreezeEnvironment"
  | "ListFreezes"
  | "SetEnvironmentPolicy"
  | "ListEnvironmentPolicies"
  | "GetRelease"
  | "ListArtifacts";

export class Client {
  readonly raw: DeployServiceClient;

  constructor(readonly opts: ClientOptions) {
    const { proto } = loadDeployProto();
    const creds = opts.tls ? grpc.credentials.createSsl(opts.tls.ca ?? null, opts.tls.key ?? null, opts.tls.cert ?? null) : grpc.credentials.createInsecure();
    // grpc-js passes an IP address as the TLS server name, and Node prints a
    // DEP0123 warning on every connection; the certificate is still checked
    // against the IP, so the warning is only noise on deployctl's stderr.
    if (opts.tls && /^(\d{1,3}(\.\d{1,3}){3}|\[.*\]):\d+$/.test(opts.address)) process.noDeprecation = true;
    this.raw = new proto.deploy.v1.DeployService(opts.address, creds, {
      // Reconnect about as fast as we retry, so a coordinator that comes
      // back is found within the budget (grpc-js defaults to 1 s .. 120 s).
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2_000,
    });
  }

  close(): void {
    this.raw.close();
  }

  /** Per-call metadata (the token goes here, not in channel credentials, so it also works over plaintext to localhost). */
  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    return md;
  }

  async #retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const backoff = new Backoff(this.opts);
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (!isRetryable(err)) throw err;
        await backoff.wait(err);
      }
    }
  }

  #unary<Req, Res>(method: UnaryMethod, req: Req, deadlineMs = this.opts.callTimeoutMs): Promise<Res> {
    const raw = this.raw as unknown as Record<UnaryMethod, (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>;
    return this.#retrying(
      () => new Promise<Res>((resolve, reject) => raw[method](req, this.#metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r as Res)))),
    );
  }

  createDeployment(req: CreateDeploymentRequestInput): Promise<DeploymentMsg> {
    return this.#unary("CreateDeployment", req);
  }
  /** `page`: which targets (GetDeploymentRequest page_size, page_token, target_state); default the first 1,000. */
  getDeployment(deploymentId: string, page: { pageSize?: number; pageToken?: string; targetState?: string } = {}): Promise<DeploymentMsg> {
    return this.#unary("GetDeployment", { deploymentId, ...page });
  }
  listDeployments(req: ListDeploymentsRequest): Promise<DeploymentsMsg> {
    return this.#unary("ListDeployments", req);
  }
  cancelDeployment(deploymentId: string, reason: string, killRunning = false, revert = false): Promise<DeploymentMsg> {
    return this.#unary("CancelDeployment", { deploymentId, reason, ...(killRunning ? { killRunning } : {}), ...(revert ? { revert } : {}) });
  }
  /** Pause, resume and promote are idempotent on the server: asking again returns the deployment unchanged. */
  pauseDeployment(deploymentId: string, reason: string): Promise<DeploymentMsg> {
    return this.#unary("PauseDeployment", { deploymentId, reason });
  }
  resumeDeployment(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("ResumeDeployment", { deploymentId });
  }
  promoteDeployment(deploymentId: string): Promise<DeploymentMsg> {
    return this.#unary("PromoteDeployment", { deploymentId });
  }
  /** Carries a request id, as createDeployment: a retry is answered with the same deployment. */
  rollbackRelease(req: RollbackReleaseRequest): Promise<DeploymentMsg> {
    return this.#unary("RollbackRelease", req);
  }
  /** At most one revert per deployment on the server: asking again answers with it. */
  revertDeployment(deploymentId: string, note: string): Promise<DeploymentMsg> {
    return this.#unary("RevertDeployment", { deploymentId, requestedBy: note });
  }
  /**
   * How many agents the filter matches and how many of them are live, in
   * one call of one agent (ListAgents' total and live); undefined from a
   * coordinator from before it counted them.
   */
  async agentCounts(req: { app?: string; environment?: string; selector?: string }): Promise<{ total: number; live: number } | undefined> {
    const page: AgentsMsg = await this.#unary("ListAgents", { ...req, pageSize: 1 });
    return page.total === undefined || page.live === undefined ? undefined : { total: page.total, live: page.live };
  }
  /**
   * Every agent the filter matches: ListAgents page after page (a page is at
   * most ~2 MiB, so a fleet of 10,000 is several), as one answer. A
   * coordinator from before pages answers them all at once.
   */
  async listAgents(req: { app?: string; environment?: string; selector?: string; status?: string }): Promise<AgentsMsg> {
    const agents: NonNullable<AgentsMsg["agents"]> = [];
    const seen = new Set<string>();
    let pageToken = "";
    let total = 0;
    let live: number | undefined;
    for (;;) {
      const page: AgentsMsg = await this.#unary("ListAgents", { ...req, pageToken });
      agents.push(...(page.agents ?? []));
      total = page.total ?? agents.length;
      live = page.live;
      if (!page.nextPageToken || seen.has(page.nextPageToken)) break;
      seen.add(page.nextPageToken);
      pageToken = page.nextPageToken;
    }
    return { agents, nextPageToken: "", total: Math.max(total, agents.length), live: live ?? agents.filter((a) => a.live).length };
  }
  cordonAgent(agentId: string, reason: string): Promise<AgentMsg> {
    return this.#unary("CordonAgent", { agentId, reason });
  }
  uncordonAgent(agentId: string): Promise<AgentMsg> {
    return this.#unary("UncordonAgent", { agentId });
  }
  deregisterAgent(agentId: string): Promise<AgentMsg> {
    return this.#unary("DeregisterAgent", { agentId });
  }
  /** `untilMs` (absolute, the caller's clock) or `forMs`; neither: until unfrozen. `windows`: in force only within them, read in `timeZone`. */
  freezeEnvironment(environment: string, reason: string, end: { forMs?: number; untilMs?: number; name?: string; windows?: string[]; timeZone?: string }): Promise<FreezeMsg> {
    return this.#unary("FreezeEnvironment", {
      environment,
      reason,
      ...(end.forMs !== undefined ? { duration: protoTime(end.forMs) } : {}),
      ...(end.untilMs !== undefined ? { until: protoTime(end.untilMs) } : {}),
      ...(end.name ? { name: end.name } : {}),
      ...(end.windows?.length ? { windows: end.windows } : {}),
      ...(end.timeZone ? { timeZone: end.timeZone } : {}),
    });
  }
  unfreezeEnvironment(environment: string, name?: string): Promise<FreezeMsg> {
    return this.#unary("UnfreezeEnvironment", { environment, ...(name ? { name } : {}) });
  }
  listFreezes(): Promise<FreezesMsg> {
    return this.#unary("ListFreezes", {});
  }
  /** Setting the same rules again is the same policy (a new revision, the same effect): safe to retry. */
  setEnvironmentPolicy(environment: string, rules: { promoteFrom?: string; minSoakMs?: number; requireCanary?: boolean }, reason: string, app?: string): Promise<PolicyMsg> {
    return this.#unary("SetEnvironmentPolicy", {
      environment,
      reason,
      ...(app ? { app } : {}),
      ...(rules.promoteFrom ? { promoteFrom: rules.promoteFrom } : {}),
      ...(rules.minSoakMs !== undefined ? { minSoak: protoTime(rules.minSoakMs) } : {}),
      ...(rules.requireCanary ? { requireCanary: true } : {}),
    });
  }
  listEnvironmentPolicies(): Promise<PoliciesMsg> {
    return this.#unary("ListEnvironmentPolicies", {});
  }
  getRelease(app: string, environment: string): Promise<ReleaseMsg> {
    return this.#unary("GetRelease", { app, environment });
  }
  listArtifacts(name?: string, app?: string): Promise<ArtifactsMsg> {
    return this.#unary("ListArtifacts", { name: name ?? "", app: app ?? "" });
  }

  /**
   * Streams `file` to UploadArtifact in 64 KiB chunks after a header with
   * its name and digest (the server refuses content with another digest).
   * The deadline grows with the size: 1 s per MiB on top of the call timeout.
   */
  uploadArtifact(name: string, digest: string, file: string, size: number): Promise<ArtifactMsg> {
    const deadlineMs = this.opts.callTimeoutMs + Math.ceil(size / (1024 * 1024)) * 1000;
    return this.#retrying(() => this.#uploadOnce(name, digest, file, deadlineMs));
  }

  #uploadOnce(name: string, digest: string, file: string, deadlineMs: number): Promise<ArtifactMsg> {
    return new Promise<ArtifactMsg>((resolve, reject) => {
      let settled = false;
      const call = this.raw.UploadArtifact(this.#metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => {
        settled = true;
        if (e) reject(e);
        else resolve(r!);
      });
      const pump = async (): Promise<void> => {
        call.write({ header: { name, digest } });
        for await (const chunk of createReadStream(file, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
          if (settled) return; // the server answered early (an error): stop sending
          if (!call.write({ chunk: chunk as Buffer })) await new Promise<void>((r) => call.once("drain", r));
        }
        call.end();
      };
      pump().catch((err: unknown) => {
        call.cancel();
        if (!settled) reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  /**
   * One WatchDeployment call: events go to onEvent; resolves when the server
   * ends the stream (after the terminal event), rejects with its status.
   * Reconnecting is the caller's job (follow.ts).
   */
  watchOnce(deploymentId: string, afterSequence: number, onEvent: (e: DeploymentEventMsg) => void, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const call = this.raw.WatchDeployment({ deploymentId, afterSequence: String(afterSequence) }, this.#metadata());
      const onAbort = (): void => call.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
      call.on("data", onEvent);
      call.on("end", () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      call.on("error", (e: grpc.ServiceError) => {
        signal.removeEventListener("abort", onAbort);
        if (e.code === grpc.status.CANCELLED && signal.aborted) resolve();
        else reject(e);
      });
    });
  }
}
