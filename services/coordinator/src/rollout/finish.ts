// Finishing: what a terminal deployment leaves to do before its (app,
// environment) lock is given back, and the release of the lock.
import { activeKey, errorMessage, PreconditionError, revertToOf, type DeploymentRecord, type JsContext, type Logger } from "../../../shared/src/index.js";
import { releaseLock } from "../createDeployment.js";

export interface FinishOptions {
  /** Records the desired release of a deployment that SUCCEEDED (releases/releaseBook.ts), before its lock is given back. */
  releases?: { record(rec: DeploymentRecord): Promise<unknown> };
  /** Called when this process frees an (app, environment) lock: convergence waiting on it goes on. */
  onLockReleased?: (app: string, environment: string) => void;
  /** Asks for the revert of a FAILED deployment with auto_revert or a CANCELLED one whose cancel asked for it (releases/rollback.ts), before its lock is given back; idempotent. */
  revert?: (rec: DeploymentRecord) => Promise<void>;
}

/**
 * Fault injection for the tests (test/convergence.test.ts): the process
 * kills itself between a deployment's finished SUCCEEDED event and the
 * desired release it makes, the crash the next reconcile repairs.
 */
const FAULT_KILL_BEFORE_DESIRED = process.env["DEPLOY_COORDINATOR_FAULT_KILL_BEFORE_DESIRED"] === "1";

/**
 * Asks for the revert a deployment needs (fold.ts revertToOf), records the
 * desired release a SUCCEEDED one made, then frees the (app, environment)
 * for the next deployment, by compare-and-set (releaseLock). In that order:
 * while a terminal deployment holds the lock every sweep comes back here, so
 * a crash (or a failed write) in between is repaired by the next reconcile,
 * and the pair's next deployment cannot exist before it (CreateDeployment
 * records the desired release too before taking such a lock over).
 */
/** `lockRevision`: the lock's revision as this process created it (Created.lockRevision), when it did. */
export async function finishDeployment(ctx: JsContext, record: DeploymentRecord, opts: FinishOptions, log: Logger, lockRevision?: number): Promise<void> {
  // The revert takes the lock over from this terminal deployment; until it
  // exists the lock is kept, so the next sweep asks again. Another
  // deployment of the pair that took the lock first wins (the revert is
  // then refused, and this lock is no longer ours to give back).
  if (revertToOf(record) && opts.revert) {
    try {
      await opts.revert(record);
    } catch (err) {
      if (!(err instanceof PreconditionError)) {
        log.warn({ err: errorMessage(err) }, "auto_revert not requested yet; the lock is kept and the next sweep tries again");
        return;
      }
      log.warn({ err: err.message }, "auto_revert not made: another deployment of the pair started first");
    }
  }
  if (record.state === "SUCCEEDED" && opts.releases) {
    if (FAULT_KILL_BEFORE_DESIRED) process.kill(process.pid, "SIGKILL");
    try {
      await opts.releases.record(record);
    } catch (err) {
      log.warn({ err }, "could not record the desired release; the lock is kept and the next sweep tries again");
      return;
    }
  }
  try {
    if (await releaseLock(ctx, activeKey(record.spec.app, record.spec.environment), record.spec.id, lockRevision)) {
      log.info({ state: record.state }, "deployment finished; lock released");
      opts.onLockReleased?.(record.spec.app, record.spec.environment);
    }
  } catch (err) {
    // The next sweep finds the lock still held by a terminal deployment
    // and releases it again; CreateDeployment takes such a lock over.
    log.warn({ err }, "could not release the lock; retried by the next sweep");
  }
}
