// Projecting: the deployment's projection in KV (what reads start from
// before catching up from the stream) and, once it is terminal, its entry in
// the list index (queries/deploymentIndex.ts). Both are caches of the
// stream, so both may lag it: a running deployment's projection is written
// at most every SAVE_INTERVAL_MS (longer for a large one: saveIntervalMs; at once when it is terminal) by a timer
// that reconciles it again, and every read catches a lagging one up.
//
// A new deployment's first write waits SAVE_INTERVAL_MS too, so one that
// finishes within it (a small one usually does) is written once, terminal.
// With the index written only at terminal: a one-target deployment's stored
// writes to deploy_deployments went from 6 to 4 (each an fsync on a server
// with sync_interval always) and its reads from 6 to 5 (bench --shapes
// fanout:1, traced by key).
// A read of a deployment with no projection folds it from its first event;
// the running one is listed through its pair's lock.
import { isTerminalDeployment, ResourceExhaustedError, saveProjection, type JsContext, type Logger } from "../../../shared/src/index.js";
import { indexDeployment } from "../queries/deploymentIndex.js";
import type { Cached } from "./deploymentStates.js";

/** The projection of a running deployment is written at most this often (a whole projection is ~250 KB of JSON at 1,000 targets). */
export const SAVE_INTERVAL_MS = 250;

/**
 * A running deployment of N targets: its projection written at most every
 * N / 10 ms, from SAVE_INTERVAL_MS up to 2 s (10,000 targets: 1 s). Each
 * write encodes every shard to find the changed ones (projectionShards.ts):
 * every 250 ms, that was the coordinator's largest cost left in the
 * bench's two rollouts to 10,000 agents (JSON encoding, 4.3 s of 17.9 s of
 * CPU). The projection is a cache: the coordinator that holds the
 * deployment answers from its own fold, and any other catches a projection
 * up from the stream (at most 2 s of events); a terminal one is written at
 * once.
 */
export function saveIntervalMs(targets: number): number {
  return Math.min(2000, Math.max(SAVE_INTERVAL_MS, Math.floor(targets / 10)));
}

export class Projector {
  /** Pending deferred projection writes. */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly ctx: JsContext,
    /** Reconciles a deployment again (a deferred write is made by that reconcile). */
    private readonly again: (id: string) => void,
  ) {}

  /** Brings the index entry and (now or by a timer) the projection up to entry.record. */
  async project(entry: Cached, log: Logger): Promise<void> {
    const record = entry.record;
    const id = record.spec.id;
    if (isTerminalDeployment(record.state) && entry.indexedState !== record.state) {
      // Not best effort: finish.ts gives the pair's lock back after this,
      // and from then on the entry is all that lists the deployment. A
      // failure fails the reconcile, which the sweep runs again (the lock,
      // still held, names the deployment to it).
      await indexDeployment(this.ctx, record);
      entry.indexedState = record.state;
    }
    if (record.lastSeq <= entry.savedSeq) return;
    entry.firstProjectedAt ??= Date.now();
    const since = entry.kvRevision === 0 ? entry.firstProjectedAt : entry.savedAt;
    const wait = isTerminalDeployment(record.state) ? 0 : since + saveIntervalMs(record.spec.targets.length) - Date.now();
    if (wait > 0) {
      if (!this.#timers.has(id)) {
        const timer = setTimeout(() => {
          this.#timers.delete(id);
          this.again(id);
        }, wait);
        timer.unref();
        this.#timers.set(id, timer);
      }
      return;
    }
    try {
      entry.kvRevision = await saveProjection(this.ctx, record, entry.kvRevision, entry.shards);
    } catch (err) {
      // Too large for the server: retrying would fail for ever (and, by
      // failing the reconcile, stall the deployment). Go on without it.
      if (!(err instanceof ResourceExhaustedError)) throw err;
      if (!entry.tooLarge) log.warn({ err: err.message }, "projection not stored");
      entry.tooLarge = true;
    }
    entry.savedSeq = record.lastSeq;
    entry.savedAt = Date.now();
  }

  cancel(id: string): void {
    const t = this.#timers.get(id);
    if (t) clearTimeout(t);
    this.#timers.delete(id);
  }

  /** At close: no more deferred writes; the lagging projections written now, best effort (reads catch them up anyway). */
  async flush(entries: Iterable<Cached>): Promise<void> {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...entries].filter((c) => c.record.lastSeq > c.savedSeq).map((c) => saveProjection(this.ctx, c.record, c.kvRevision, c.shards)));
  }
}
