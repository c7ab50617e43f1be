// CancelDeployment: appends deployment.cancel_requested (compare-and-set on
// the coordinator subject, retried on a lost race) unless the deployment is
// terminal or already cancelling; shared by gRPC and the dashboard's HTTP API.
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
): Promise<DeploymentRecord> {
  const { ctx, log } = deps;
  let rec = await mustLoadDeployment(ctx, id);
  for (let attempt = 0; attempt < 5 && !isTerminalDeployment(rec.state) && !rec.cancelRequested; attempt++) {
    try {
      await appendEvent(ctx, id, { type: "deployment.cancel_requested", reason, by: by.name, byVia: by.via }, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: rec.lastCoordinatorSeq });
      log.info({ deploymentId: id, reason, by: by.name }, "cancel requested");
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    rec = (await catchUp(ctx, id, rec, 0))!.record;
  }
  await deps.reconciler.schedule(id);
  return mustLoadDeployment(ctx, id);
}
