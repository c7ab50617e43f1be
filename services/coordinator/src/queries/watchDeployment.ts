// WatchDeployment's semantics, shared by the gRPC stream and the dashboard's
// Server-Sent Events: replay the deployment's events from the start (so each
// event carries the state the fold gave after it), hand over those after
// `afterSeq`, then follow live ones and stop after the terminal event.
import {
  NotFoundError,
  foldEvent,
  followEvents,
  isTerminalDeployment,
  loadDeployment,
  type DeploymentRecord,
  type JsContext,
  type StoredEvent,
} from "../../../shared/src/index.js";

export interface WatchedEvent {
  event: StoredEvent;
  /** The deployment as folded up to and including this event (mutated by later ones: convert before the next). */
  record: DeploymentRecord | undefined;
  /** Why the event changed nothing, when it did not. */
  ignored: string | undefined;
}

/** The deployment now, or NotFoundError. */
export async function mustLoadDeployment(ctx: Pick<JsContext, "js" | "jsm" | "deployments">, id: string): Promise<DeploymentRecord> {
  const loaded = await loadDeployment(ctx, id);
  if (!loaded) throw new NotFoundError(`deployment ${id} does not exist`);
  return loaded.record;
}

/**
 * The deployment's events after `afterSeq`, live, ending after the terminal
 * one (or when `signal` aborts). Check that the deployment exists first
 * (mustLoadDeployment): for an unknown id this waits for events that never come.
 */
export async function* watchDeployment(
  ctx: Pick<JsContext, "js">,
  id: string,
  opts: { afterSeq: number; signal: AbortSignal },
): AsyncGenerator<WatchedEvent> {
  let rec: DeploymentRecord | undefined;
  for await (const e of followEvents(ctx, id, { afterSeq: 0, signal: opts.signal })) {
    if (opts.signal.aborted) return;
    if (e.invalid !== undefined) continue;
    const { record, ignored } = foldEvent(rec, e);
    rec = record;
    if (e.seq > opts.afterSeq) yield { event: e, record: rec, ignored };
    if (rec && isTerminalDeployment(rec.state)) return;
  }
}
