// CancelDeployment: cancels every dispatched target its agent has not
// started (target.cancelled, racing the start on the target's subject), then
// appends deployment.cancel_requested (compare-and-set on the coordinator
// subject after the view the targets were read from; on a lost race, again
// from a new view), unless the deployment is terminal or already cancelling
// (with kill_running: already killing; with revert: already reverting):
// rollout/plan.ts cancelDecisions says why in that order. Shared by gRPC and
// the dashboard's HTTP API.
// With `kill`, every later coordinator event carries HDR_KILL_REQUESTED,
// which the agents applying it look for while they run
// (services/agent/src/handleCommand.ts), at once when told to
// (sendKillNotice). With `revert`, the event names the
// release the targets it changed go back to once it is CANCELLED: the pair's
// desired release, read now (this deployment holds the pair's lock, so no
// other deployment of the pair changed it since this one was created); the
// revert itself is made as auto_revert's is (rollout/finish.ts). The event
// names who asked (`by`): the caller's authenticated identity.
import {
  COORDINATOR_SOURCE,
  ConflictError,
  HEARTBEAT_REQUEST_SUBJECT,
  PreconditionError,
  appendEvent,
  catchUp,
  errorMessage,
  isRaceDecision,
  killNotice,
  isTerminalDeployment,
  type DeploymentRecord,
  type Identity,
  type JsContext,
  type Logger,
  type RestoredRelease,
} from "../../../shared/src/index.js";
import { sameArtifact } from "../releases/agentReleases.js";
import type { ReleaseBook } from "../releases/releaseBook.js";
import { restoredOf } from "../releases/rollback.js";
import { appendRaces } from "../rollout/decisions.js";
import { cancelDecisions } from "../rollout/plan.js";
import type { Reconciler } from "../rollout/reconciler.js";
import { mustLoadDeployment } from "./watchDeployment.js";

export interface CancelAsk {
  /** Also kill the applies in flight (kill_running). */
  kill?: boolean;
  /** Also bring the targets it changed back to the release desired before it, once CANCELLED. */
  revert?: boolean;
}

export async function cancelDeployment(
  deps: { ctx: JsContext; reconciler: Reconciler; releases: Pick<ReleaseBook, "read">; log: Logger },
  id: string,
  reason: string,
  by: Identity,
  ask: CancelAsk = {},
): Promise<DeploymentRecord> {
  const { ctx, log } = deps;
  const kill = ask.kill === true;
  let rec = await mustLoadDeployment(ctx, id);
  const asked = (r: DeploymentRecord): boolean => r.cancelRequested && (!kill || r.killRequested === true) && (!ask.revert || r.cancelRevertTo !== undefined);
  // Refused before anything is written when there is nothing to go back to.
  const revertTo = ask.revert && !asked(rec) ? await revertTargetOf(deps, rec) : undefined;
  for (let attempt = 0; attempt < 5 && !isTerminalDeployment(rec.state) && !asked(rec); attempt++) {
    try {
      const event = {
        type: "deployment.cancel_requested" as const,
        reason,
        by: by.name,
        byVia: by.via,
        ...(kill ? { kill: true as const } : {}),
        ...(revertTo ? { revertTo } : {}),
      };
      // A second cancel (adding kill_running or a revert) finds its targets cancelled by the first.
      if (!rec.cancelRequested) await appendRaces(ctx, rec, cancelDecisions(rec, event).filter(isRaceDecision), log);
      await appendEvent(ctx, id, event, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: rec.lastCoordinatorSeq, cancelRequested: rec.cancelRequested, killRequested: rec.killRequested === true });
      log.info({ deploymentId: id, reason, by: by.name, kill, revertTo: revertTo?.release }, kill ? "cancel requested, killing the applies in flight" : "cancel requested");
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    rec = (await catchUp(ctx, id, rec, 0))!.record;
  }
  if (ask.revert && rec.cancelRevertTo === undefined) {
    // Ended before the cancel was recorded (or it ended earlier): nothing
    // was cancelled, so nothing is reverted.
    throw new PreconditionError(`deployment ${id} is ${rec.state}${rec.cancelRequested ? ", cancelled without a revert" : ""}: a cancel with revert applies to a deployment still running; ${wayBack(rec)}`);
  }
  if (kill && rec.killRequested === true && !isTerminalDeployment(rec.state)) sendKillNotice(ctx, id, log);
  await deps.reconciler.schedule(id);
  return mustLoadDeployment(ctx, id);
}

/**
 * Tells the agents applying `id` to look now for its cancel with
 * kill_running, which is stored: one core NATS message on the subject every
 * agent already follows (HEARTBEAT_REQUEST_SUBJECT), so their look every
 * killLookMs is only the backstop (10,000 agents applying looked 2,000
 * times a second at its former 5 s). Lost (a coordinator that stops first,
 * an agent cut off, which looks when it is back), the kill still comes at
 * that look. DEPLOY_COORDINATOR_FAULT_NO_KILL_NOTICE=1 sends none
 * (test/cancel-kill.test.ts: the backstop).
 */
function sendKillNotice(ctx: JsContext, id: string, log: Logger): void {
  if (process.env["DEPLOY_COORDINATOR_FAULT_NO_KILL_NOTICE"] === "1") return;
  try {
    ctx.nc.publish(HEARTBEAT_REQUEST_SUBJECT, killNotice(id));
  } catch (err) {
    log.warn({ deploymentId: id, err: errorMessage(err) }, "could not tell the agents to look for the kill now; they see it at their next look (killLookMs)");
  }
}

/** What brings back what an ended deployment changed: RevertDeployment, or for one that SUCCEEDED (a desired release) RollbackRelease. */
const wayBack = (rec: DeploymentRecord): string =>
  rec.state === "SUCCEEDED"
    ? `to go back from it, deployctl rollback ${rec.spec.app} ${rec.spec.environment}`
    : `to bring back what it changed, deployctl revert ${rec.spec.id} (RevertDeployment)`;

/** The release a cancel with revert brings the changed targets back to, or PreconditionError naming why there is none. */
async function revertTargetOf(deps: { releases: Pick<ReleaseBook, "read"> }, rec: DeploymentRecord): Promise<RestoredRelease> {
  const { spec } = rec;
  const what = `deployment ${spec.id} cannot be reverted`;
  if (isTerminalDeployment(rec.state)) {
    throw new PreconditionError(`${what}: it is ${rec.state} already; a cancel with revert applies to a deployment still running; ${wayBack(rec)}`);
  }
  if (spec.reverts !== undefined) throw new PreconditionError(`${what}: it is the revert of ${spec.reverts} itself; cancel it without revert`);
  const to = spec.revertTo ?? restoredOf(await deps.releases.read(spec.app, spec.environment));
  if (!to) {
    throw new PreconditionError(`${what}: no deployment of ${spec.app} to ${spec.environment} succeeded before it, so there is no release to go back to; cancel it without revert`);
  }
  if (to.version === spec.changeset.version && sameArtifact(to.artifact, spec.changeset.artifact)) {
    throw new PreconditionError(`${what}: it installs the desired release of ${spec.app} in ${spec.environment} itself (${to.release}); cancel it without revert`);
  }
  return to;
}
