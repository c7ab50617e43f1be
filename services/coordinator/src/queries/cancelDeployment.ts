// CancelDeployment: appends deployment.cancel_requested (compare-and-set on
// the coordinator subject, retried on a lost race) unless the deployment is
// terminal or already cancelling (with kill_running: already killing);
// shared by gRPC and the dashboard's HTTP API. With `kill`, every later
// coordinator event carries HDR_KILL_REQUESTED, which the agents applying it
// look for while they run (services/agent/src/handleCommand.ts).
// The event names who asked (`by`): the caller's authenticated identity.
import {
  COORDINATOR_SOURCE,
  ConflictError,
  appendEvent,
  catchUp,
  isTerminalDeployment,
  type DeploymentRecord,
  type Identity,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { Reconciler } from "../rollout/reconciler.js";
import { mustLoadDeployment } from "./watchDeployment.js";

export async function cancelDeployment(
  deps: { ctx: JsContext; reconciler: Reconciler; log: Logger },
  id: string,
  reason: string,
  by: Identity,
  kill = false,
): Promise<DeploymentRecord> {
  const { ctx, log } = deps;
  let rec = await mustLoadDeployment(ctx, id);
  const asked = (r: DeploymentRecord): boolean => r.cancelRequested && (!kill || r.killRequested === true);
  for (let attempt = 0; attempt < 5 && !isTerminalDeployment(rec.state) && !asked(rec); attempt++) {
    try {
      const event = { type: "deployment.cancel_requested" as const, reason, by: by.name, byVia: by.via, ...(kill ? { kill: true as const } : {}) };
      await appendEvent(ctx, id, event, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: rec.lastCoordinatorSeq, cancelRequested: rec.cancelRequested, killRequested: rec.killRequested === true });
      log.info({ deploymentId: id, reason, by: by.name, kill }, kill ? "cancel requested, killing the applies in flight" : "cancel requested");
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    rec = (await catchUp(ctx, id, rec, 0))!.record;
  }
  await deps.reconciler.schedule(id);
  return mustLoadDeployment(ctx, id);
}
