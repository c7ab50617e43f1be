// DeployService handlers. Each unary call does a bounded amount of JetStream
// work and answers; long work is observed through WatchDeployment.
import { status, type sendUnaryData, type ServerUnaryCall, type ServerReadableStream, type ServerWritableStream, type ServiceError } from "@grpc/grpc-js";
import { NotFoundError, asArtifactName, asDigest, errorMessage, policyHasRules, type JsContext, type Logger } from "../../../shared/src/index.js";
import type { DeployServiceHandlers } from "../../../shared/src/proto.js";
import { artifactApp, type ArtifactStore, type UploadPart } from "../artifacts/artifactStore.js";
import { createDeployment, previewDeployment } from "../createDeployment.js";
import { cancelDeployment } from "../queries/cancelDeployment.js";
import { pauseDeployment, promoteDeployment, resumeDeployment } from "../queries/operatorDecisions.js";
import { promotionGate, resolvePromotion } from "../releases/promote.js";
import { revertDeployment, revertOf, rollbackRelease } from "../releases/rollback.js";
import { cordonAgent, deregisterAgent, listAgentsPage } from "../queries/listAgents.js";
import { listDeployments } from "../queries/listDeployments.js";
import { getDeployment, mustExist, untilDrained, watchDeployment, type WatchSlots } from "../queries/watchDeployment.js";
import type { Cordons } from "../cordons.js";
import type { Freezes } from "../freezes.js";
import type { Policies } from "../policies.js";
import type { Registry } from "../registry.js";
import type { Reconciler } from "../rollout/reconciler.js";
import type { Convergence } from "../releases/convergence.js";
import type { ReleaseBook } from "../releases/releaseBook.js";
import {
  validateAfterSequence,
  validateListAgents,
  validateAgentId,
  validateCreate,
  validateDeploymentId,
  validateUnfreeze,
  validateFreeze,
  validatePolicy,
  validateList,
  validateNote,
  validateReason,
  validateReleaseRequest,
  validateRollback,
  validateTargetPage,
  type Defaults,
} from "../requests.js";
import { listPage, toArtifactMessage, toDeploymentMessage, toEventMessage, toFreezeMessage, toFreezesMessage, toPolicyMessage, type ArtifactMsg } from "./convert.js";
import { toReleaseMessage } from "./convertRelease.js";
import { callIdentity } from "./identity.js";
import { toServiceError } from "./status.js";

export interface ServiceDeps {
  ctx: JsContext;
  registry: Registry;
  reconciler: Reconciler;
  artifacts: ArtifactStore;
  /** Desired releases (ListAgents, GetRelease). */
  releases: ReleaseBook;
  /** Agents taken out of new deployments (CordonAgent). */
  cordons: Cordons;
  /** Environments frozen (FreezeEnvironment). */
  freezes: Freezes;
  /** Environment policies (SetEnvironmentPolicy). */
  policies: Policies;
  /** Whether convergence is on per environment, and what every creation records for it. */
  convergence: Convergence;
  defaults: Defaults;
  log: Logger;
  /** Metrics of finished unary calls, when enabled. */
  observe?: CallObserver;
  /** Aborted when the coordinator shuts down: open watches end. */
  shutdown: AbortSignal;
  /** How many watches this coordinator follows at once (gRPC and the dashboard's together). */
  watches: WatchSlots;
}

/** Counts and times a finished call (metrics off: nothing). */
export type CallObserver = (method: string, code: number, seconds: number) => void;

function unary<Req, Res>(log: Logger, method: string, fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>, observe?: CallObserver) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const started = process.hrtime.bigint();
    const took = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    // Through a promise, so a handler that throws synchronously (a validation
    // error before its first await) still answers with its status, not
    // UNKNOWN (found by test/fuzz-grpc.test.ts: ListAgents {environment: " "}).
    Promise.resolve(call.request).then((req) => fn(req, call)).then(
      (res) => {
        observe?.(method, status.OK, took());
        callback(null, res);
      },
      (err: unknown) => {
        const se = toServiceError(err);
        observe?.(method, se.code ?? status.UNKNOWN, took());
        log.info({ method, code: se.code, details: se.details, err }, "call failed");
        callback(se, null);
      },
    );
  };
}

export function deployServiceHandlers(deps: ServiceDeps): DeployServiceHandlers {
  const { ctx } = deps;
  const log = deps.log;
  const call = <Req, Res>(method: string, fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) => unary(log, method, fn, deps.observe);
  return {
    CreateDeployment: call("CreateDeployment", async (req, c) => {
      const input = await resolvePromotion(deps.releases, validateCreate(req, deps.defaults), promotionGate(ctx, () => deps.registry.clock.now(), { dryRun: req.validateOnly === true, policy: (env, app) => deps.policies.applying(env, app) }));
      const requester = callIdentity(c);
      if (req.validateOnly === true) {
        // Checked, and nothing written: the deployment it would be, without an id.
        const would = await previewDeployment(ctx, deps.registry, deps.artifacts, input, requester, deps.convergence.fleet);
        const n = would.cordoned.length;
        const left = n > 0 ? `; ${n} cordoned agent(s) left out: ${would.cordoned.slice(0, 20).join(", ")}${n > 20 ? ", …" : ""}` : "";
        return { ...toDeploymentMessage(would.record), id: "", message: `validate_only: the request is valid; nothing was created${left}` };
      }
      const created = await createDeployment(ctx, deps.registry, deps.artifacts, input, requester, deps.convergence.fleet, { answerEarly: true });
      const rec = created.record;
      log.info({ deploymentId: rec.spec.id, requestId: input.requestId, app: input.app, environment: input.environment, requestedBy: requester.name }, "deployment accepted");
      // The answer is made first: the reconciler folds later events into
      // the record it is handed.
      const answer = toDeploymentMessage(rec);
      // Start the rollout now, from the record in hand, rather than at the
      // next sweep or event; the answer does not wait for it.
      deps.reconciler.launch(created);
      return answer;
    }),

    GetDeployment: call("GetDeployment", async (req) => {
      const id = validateDeploymentId(req.deploymentId);
      const page = validateTargetPage(req);
      const rec = await getDeployment(ctx, id, deps.reconciler);
      return toDeploymentMessage(rec, await revertOf(ctx, rec), page);
    }),

    ListDeployments: call("ListDeployments", async (req) => {
      const q = validateList(req);
      const { deployments, nextPageToken } = await listDeployments(ctx, q, deps.registry);
      return { deployments: listPage(deployments, q.agentId), nextPageToken };
    }),

    WatchDeployment: (call: ServerWritableStream<{ deploymentId?: string; afterSequence?: string }, object>) => {
      void watch(deps, call);
    },

    CancelDeployment: call("CancelDeployment", async (req, c) => {
      const id = validateDeploymentId(req.deploymentId);
      const reason = validateReason(req.reason);
      const rec = await cancelDeployment(deps, id, reason, callIdentity(c), { kill: req.killRunning === true, revert: req.revert === true });
      return toDeploymentMessage(rec, await revertOf(ctx, rec));
    }),

    PauseDeployment: call("PauseDeployment", async (req, c) => {
      const id = validateDeploymentId(req.deploymentId);
      const reason = validateReason(req.reason);
      return toDeploymentMessage(await pauseDeployment(deps, id, reason, callIdentity(c)));
    }),

    ResumeDeployment: call("ResumeDeployment", async (req, c) => {
      return toDeploymentMessage(await resumeDeployment(deps, validateDeploymentId(req.deploymentId), callIdentity(c)));
    }),

    PromoteDeployment: call("PromoteDeployment", async (req, c) => {
      return toDeploymentMessage(await promoteDeployment(deps, validateDeploymentId(req.deploymentId), callIdentity(c)));
    }),

    RollbackRelease: call("RollbackRelease", async (req, c) => {
      const input = validateRollback(req, deps.defaults);
      const rollbackDeps = { ctx, registry: deps.registry, artifacts: deps.artifacts, releases: deps.releases, fleet: deps.convergence.fleet };
      const created = await rollbackRelease(rollbackDeps, input, callIdentity(c), log);
      const answer = toDeploymentMessage(created.record);
      deps.reconciler.launch(created);
      return answer;
    }),

    RevertDeployment: call("RevertDeployment", async (req, c) => {
      const id = validateDeploymentId(req.deploymentId);
      const note = validateNote(req.requestedBy);
      const rollbackDeps = { ctx, registry: deps.registry, artifacts: deps.artifacts, releases: deps.releases, fleet: deps.convergence.fleet };
      const created = await revertDeployment(rollbackDeps, id, note, callIdentity(c), log);
      const answer = toDeploymentMessage(created.record);
      // A revert found (made before) is adopted too: the reconciler ignores one it already drives.
      deps.reconciler.launch(created);
      return answer;
    }),

    UploadArtifact: (call: ServerReadableStream<UploadPart, ArtifactMsg>, callback: sendUnaryData<ArtifactMsg>) => {
      deps.artifacts.upload(call).then(
        (a) => callback(null, toArtifactMessage(a)),
        (err: unknown) => {
          const se = toServiceError(err);
          log.info({ method: "UploadArtifact", code: se.code, details: se.details, err }, "call failed");
          callback(se, null);
        },
      );
    },

    GetArtifact: call("GetArtifact", async (req) => {
      const name = asArtifactName(req.name, "name");
      const digest = asDigest(req.digest, "digest");
      const app = artifactApp(req.app, name, "app");
      const a = await deps.artifacts.get(app, name, digest);
      if (!a) throw new NotFoundError(`artifact ${name} with digest ${digest} does not exist for app ${app}`);
      return toArtifactMessage(a);
    }),

    ListArtifacts: call("ListArtifacts", async (req) => {
      const name = req.name ? asArtifactName(req.name, "name") : undefined;
      const app = req.app ? artifactApp(req.app, "", "app") : undefined;
      return { artifacts: (await deps.artifacts.list(app, name)).map(toArtifactMessage) };
    }),

    ListAgents: call("ListAgents", async (req) => listAgentsPage(deps.registry, deps.releases, validateListAgents(req))),

    CordonAgent: call("CordonAgent", async (req, c) => {
      const agentId = validateAgentId(req.agentId);
      const reason = validateReason(req.reason);
      return cordonAgent(deps, agentId, true, reason, callIdentity(c));
    }),

    UncordonAgent: call("UncordonAgent", async (req, c) => cordonAgent(deps, validateAgentId(req.agentId), false, "", callIdentity(c))),

    DeregisterAgent: call("DeregisterAgent", async (req, c) => deregisterAgent({ ...deps, ctx }, validateAgentId(req.agentId), callIdentity(c))),

    FreezeEnvironment: call("FreezeEnvironment", async (req, c) => {
      const f = validateFreeze(req, deps.registry.clock.now());
      const by = callIdentity(c);
      const rec = await deps.freezes.set(f.environment, true, f.reason, by, f);
      log.info({ environment: f.environment, name: f.name, windows: f.windows, timeZone: f.timeZone, by: by.name, reason: f.reason, until: rec.until ?? "unfrozen" }, "environment frozen");
      return toFreezeMessage(rec, deps.freezes.inForce(rec));
    }),

    UnfreezeEnvironment: call("UnfreezeEnvironment", async (req, c) => {
      const { environment, name } = validateUnfreeze(req);
      const by = callIdentity(c);
      const rec = await deps.freezes.set(environment, false, "", by, name ? { name } : {});
      log.info({ environment, name, by: by.name }, "environment unfrozen");
      return toFreezeMessage(rec, deps.freezes.inForce(rec));
    }),

    ListFreezes: call("ListFreezes", () => Promise.resolve(toFreezesMessage(deps.freezes.list()))),

    SetEnvironmentPolicy: call("SetEnvironmentPolicy", async (req, c) => {
      const { environment, app, rules, reason } = validatePolicy(req);
      const by = callIdentity(c);
      const rec = await deps.policies.set(environment, app, rules, reason, by);
      log.info({ environment, app, ...rules, by: by.name, reason }, policyHasRules(rules) ? "environment policy set" : "environment policy cleared");
      return toPolicyMessage(rec);
    }),

    ListEnvironmentPolicies: call("ListEnvironmentPolicies", () => Promise.resolve({ policies: deps.policies.list().map(toPolicyMessage) })),

    GetRelease: call("GetRelease", async (req) => {
      const { app, environment } = validateReleaseRequest(req);
      const [desired, ...history] = await deps.releases.history(app, environment);
      if (!desired) throw new NotFoundError(`no deployment of app ${app} to environment ${environment} has succeeded yet: there is no desired release`);
      return { desired: toReleaseMessage(desired), history: history.map((r) => toReleaseMessage(r, false)), convergence: deps.convergence.isOn(environment) };
    }),
  };
}

/** Streams watchDeployment (queries/watchDeployment.ts) as gRPC messages; ends after the terminal event. */
async function watch(deps: ServiceDeps, call: ServerWritableStream<{ deploymentId?: string; afterSequence?: string }, object>): Promise<void> {
  const abort = new AbortController();
  let finished = false;
  // Ends the call once: OK after the terminal event, or with a status. The
  // status goes out through the stream's "error" event, which grpc-js turns
  // into the call's status (destroy() would drop it).
  const finish = (err?: Partial<ServiceError>): void => {
    if (finished) return;
    finished = true;
    abort.abort();
    if (err) call.emit("error", err);
    else call.end();
  };
  const onClientGone = (): void => {
    finished = true;
    abort.abort();
  };
  // Not the end of the deployment: the client resumes elsewhere from the last sequence it saw.
  const onShutdown = (): void => finish({ code: status.UNAVAILABLE, details: "coordinator shutting down; resume with after_sequence" });
  call.on("cancelled", onClientGone);
  deps.shutdown.addEventListener("abort", onShutdown, { once: true });
  let giveBack: (() => void) | undefined;
  try {
    const id = validateDeploymentId(call.request.deploymentId);
    const after = validateAfterSequence(call.request.afterSequence);
    giveBack = deps.watches.take();
    await mustExist(deps.ctx, id, deps.reconciler);
    const onRetry = (err: unknown, attempt: number): void => deps.log.warn({ deploymentId: id, attempt, err: errorMessage(err) }, "watch: reading events failed; resuming");
    for await (const { event, record, ignored } of watchDeployment(deps.ctx, id, { afterSeq: after, signal: abort.signal, onRetry })) {
      if (finished) break;
      const ok = call.write(toEventMessage(event, record, ignored));
      if (!ok) await untilDrained(call, abort.signal);
    }
    finish();
  } catch (err) {
    finish(toServiceError(err));
  } finally {
    giveBack?.();
    deps.shutdown.removeEventListener("abort", onShutdown);
  }
}
