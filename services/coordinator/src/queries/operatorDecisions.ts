// PauseDeployment, ResumeDeployment and PromoteDeployment: an operator's
// decision appended as an event on the deployment's coordinator subject, by
// compare-and-set (retried on a lost race, as cancelDeployment), so it is
// ordered with the coordinators' own decisions and folded like them. Each
// is idempotent: asking for what is already so returns the deployment
// unchanged. The event names who asked (`by`: the authenticated identity).
import {
  COORDINATOR_SOURCE,
  ConflictError,
  PreconditionError,
  appendEvent,
  catchUp,
  isTerminalDeployment,
  type DeploymentRecord,
  type EventBody,
  type Identity,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { Reconciler } from "../rollout/reconciler.js";
import { mustLoadDeployment } from "./watchDeployment.js";

export interface DecisionDeps {
  ctx: JsContext;
  reconciler: Reconciler;
  log: Logger;
}

/**
 * `decide` says what to append on the current view: an event, nothing
 * (already so: answered unchanged), or throws (refused: nothing written).
 */
async function decideOnce(deps: DecisionDeps, id: string, what: string, by: Identity, decide: (rec: DeploymentRecord) => EventBody | undefined): Promise<DeploymentRecord> {
  const { ctx, log } = deps;
  let rec = await mustLoadDeployment(ctx, id);
  for (let attempt = 0; attempt < 5; attempt++) {
    const event = decide(rec);
    if (!event) break;
    try {
      await appendEvent(ctx, id, event, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: rec.lastCoordinatorSeq, cancelRequested: rec.cancelRequested, killRequested: rec.killRequested === true });
      log.info({ deploymentId: id, by: by.name }, `${what} requested`);
      rec = (await catchUp(ctx, id, rec, 0))!.record;
      break;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      rec = (await catchUp(ctx, id, rec, 0))!.record;
    }
  }
  await deps.reconciler.schedule(id);
  return mustLoadDeployment(ctx, id);
}

/** Running applies go on; nothing new is dispatched until resumed. A terminal or cancelling deployment is returned unchanged. */
export function pauseDeployment(deps: DecisionDeps, id: string, reason: string, by: Identity): Promise<DeploymentRecord> {
  return decideOnce(deps, id, "pause", by, (rec) =>
    isTerminalDeployment(rec.state) || rec.cancelRequested || rec.paused ? undefined : { type: "deployment.paused", reason, by: by.name, byVia: by.via },
  );
}

export function resumeDeployment(deps: DecisionDeps, id: string, by: Identity): Promise<DeploymentRecord> {
  return decideOnce(deps, id, "resume", by, (rec) => (isTerminalDeployment(rec.state) || !rec.paused ? undefined : { type: "deployment.resumed", by: by.name, byVia: by.via }));
}

/**
 * Lets a canary deployment go on to every target: once its wave is done or
 * before (the operator's call). FAILED_PRECONDITION without a canary wave,
 * once terminal, cancelling, or halted (a canary failed).
 */
export function promoteDeployment(deps: DecisionDeps, id: string, by: Identity): Promise<DeploymentRecord> {
  return decideOnce(deps, id, "promote", by, (rec) => {
    if (rec.promotedBy !== undefined) return undefined;
    if (!(rec.spec.strategy.canary ?? 0)) throw new PreconditionError(`deployment ${id} has no canary wave to promote (strategy.canary is not set)`);
    if (isTerminalDeployment(rec.state)) throw new PreconditionError(`deployment ${id} is ${rec.state}: nothing to promote`);
    if (rec.cancelRequested) throw new PreconditionError(`deployment ${id} is being cancelled: nothing to promote`);
    if (rec.halted) throw new PreconditionError(`deployment ${id} is halted (${rec.message}): nothing to promote`);
    return { type: "deployment.promoted", by: by.name, byVia: by.via };
  });
}
