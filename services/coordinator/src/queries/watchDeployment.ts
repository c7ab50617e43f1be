// WatchDeployment's semantics, shared by the gRPC stream and the dashboard's
// Server-Sent Events: replay the deployment's events from the start (so each
// event carries the state the fold gave after it), hand over those after
// `afterSeq`, then follow live ones and stop after the terminal event.
import { setTimeout as delay } from "node:timers/promises";
import {
  catchUp,
  COORDINATOR_SOURCE,
  EVENTS_STREAM,
  NotFoundError,
  WatchesFullError,
  eventSubject,
  foldEvent,
  followEvents,
  isTerminalDeployment,
  loadDeployment,
  type DeploymentRecord,
  type HeldChunks,
  type JsContext,
  type StoredEvent,
} from "../../../shared/src/index.js";
import { acknowledgedDeployment } from "../createDeployment.js";

export interface WatchedEvent {
  event: StoredEvent;
  /** The deployment as folded up to and including this event (mutated by later ones: convert before the next). */
  record: DeploymentRecord | undefined;
  /** Why the event changed nothing, when it did not. */
  ignored: string | undefined;
}

/**
 * NotFoundError unless the deployment exists (its created event is stored):
 * one get of the last event on its coordinator subject, whatever the
 * deployment's size. A watch needs no more: it folds the events itself.
 * (It loaded the whole deployment before: at 10,000 targets, in the middle
 * of the rollout, a catch-up read of the events not yet in KV made of
 * sequential reads at the seconds each a saturated server then takes, and
 * a watch received nothing for its first 58 s.)
 */
export async function mustExist(ctx: Pick<JsContext, "js" | "jsm" | "deployments">, id: string, held?: Pick<HeldFolds, "holds">): Promise<void> {
  // A deployment this coordinator reconciles exists: one stream read less
  // for the watch that usually follows a create.
  if (held?.holds(id)) return;
  const m = await ctx.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject(id, COORDINATOR_SOURCE) });
  // Not stored yet, and acknowledged: stored now (an early create's answer may reach its client first).
  if (!m && !(await acknowledgedDeployment(ctx, id))) throw new NotFoundError(`deployment ${id} does not exist`);
}

/**
 * How long GetDeployment (gRPC and HTTP) folds events that KV does not hold
 * yet before it answers with the state as of the last one folded (its
 * last_sequence says which). Reached only on a saturated server: during the
 * 10,000-agent rollout in the bench each read took seconds, and a
 * GetDeployment up to 53 s (28 s with this budget, one run each: the KV read
 * before the catch-up is not bounded by it); a few events take milliseconds
 * otherwise.
 */
export const GET_BUDGET_MS = 2000;

/** The deployment now (with `budgetMs`: as far as it could be read in that time), or NotFoundError. */
export async function mustLoadDeployment(ctx: Pick<JsContext, "js" | "jsm" | "deployments">, id: string, opts: { budgetMs?: number } = {}): Promise<DeploymentRecord> {
  const loaded = (await loadDeployment(ctx, id, undefined, opts)) ?? (await acknowledgedDeployment(ctx, id));
  if (!loaded) throw new NotFoundError(`deployment ${id} does not exist`);
  return loaded.record;
}

/** Where a coordinator keeps the folds of the deployments it reconciles (rollout/reconciler.ts). */
export interface HeldFolds {
  /** A copy of the fold held for `id`, exact up to its lastSeq, or undefined. */
  foldOf(id: string): DeploymentRecord | undefined;
  /** Whether a fold of `id` is held now. */
  holds(id: string): boolean;
}

/**
 * GetDeployment (gRPC and HTTP): the deployment, caught up from the stream
 * for at most GET_BUDGET_MS. From this coordinator's own fold when it holds
 * one (it reconciles the deployment), with the events delivered to it since
 * folded in (rollout/deploymentStates.ts deliveredCopyOf), so only what was
 * stored after its last delivery is read; otherwise from the KV
 * projection, which is written every few seconds at most: during the
 * 10,000-agent rollout a call read the projection and the thousands of
 * events after it, p50 0.7 s, max 2.4 s (one call every 2 s, 37 calls), and
 * answered with the state as far as its 2 s allowed.
 */
export async function getDeployment(ctx: Pick<JsContext, "js" | "jsm" | "deployments">, id: string, held?: Pick<HeldFolds, "foldOf">): Promise<DeploymentRecord> {
  const fold = held?.foldOf(id);
  if (!fold) return mustLoadDeployment(ctx, id, { budgetMs: GET_BUDGET_MS });
  const loaded = await catchUp(ctx, id, fold, 0, undefined, undefined, Date.now() + GET_BUDGET_MS);
  return loaded!.record;
}

/**
 * The watches (gRPC WatchDeployment and the dashboard's event streams) one
 * coordinator follows at once. Each holds a consumer on DEPLOY_EVENTS, the
 * stream the coordinators' own reads use too: unbounded, a thousand
 * dashboards or a client that leaks its streams would make that many
 * consumers, and on a server that caps a stream's consumers (nats-server's
 * default_max_consumers, 1,000 by default) the coordinators' catch-up reads
 * would be refused and rollouts stall. A watch beyond `max` is refused at
 * once as UNAVAILABLE (a client retries it with backoff), naming the limit,
 * with the trailer watches-full (deployctl reads meanwhile).
 */
export class WatchSlots {
  #open = 0;
  #refused = 0;

  /** `max` 0: no limit. */
  constructor(readonly max: number) {}

  get open(): number {
    return this.#open;
  }

  /** Watches refused since the start. */
  get refused(): number {
    return this.#refused;
  }

  /** A slot for one watch, and the function that gives it back (once); WatchesFullError when every slot is taken. */
  take(): () => void {
    if (this.max > 0 && this.#open >= this.max) {
      this.#refused++;
      throw new WatchesFullError(
        `this coordinator follows ${this.max} watches already, its limit (watches.max, DEPLOY_MAX_WATCHES): retry shortly, or read the deployment with GetDeployment`,
        this.max,
      );
    }
    this.#open++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#open--;
    };
  }
}

/**
 * Waits until a watch's full stream (a gRPC call, an HTTP response) drains,
 * or the watch is aborted: a client gone while its stream was full never
 * drains it, and the watch, its consumer and its slot would be held for
 * ever.
 */
export function untilDrained(stream: { once(event: "drain", fn: () => void): unknown; off(event: "drain", fn: () => void): unknown }, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * How long a watch rides out a failing event stream (consumer creates timing
 * out on a saturated server, a node lost) before it ends with the error: the
 * 10,000-agent bench saw watches fail after ~30 s of a saturated nats-server
 * while the rollout itself went on.
 */
export const WATCH_RETRY_MS = 60_000;

/**
 * The deployment's events after `afterSeq`, live, ending after the terminal
 * one (or when `signal` aborts). Check that the deployment exists first
 * (mustExist): for an unknown id this waits for events that never come.
 * A read that fails is resumed after the last event seen, in order and
 * without repeats, for up to WATCH_RETRY_MS without progress.
 */
export async function* watchDeployment(
  ctx: Pick<JsContext, "nc" | "jsm">,
  id: string,
  opts: { afterSeq: number; signal: AbortSignal; onRetry?: (err: unknown, attempt: number) => void },
): AsyncGenerator<WatchedEvent> {
  let rec: DeploymentRecord | undefined;
  const held: HeldChunks = new Map();
  let seen = 0;
  let failingSince: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const e of followEvents(ctx, id, { afterSeq: seen, signal: opts.signal })) {
        if (opts.signal.aborted) return;
        seen = e.seq;
        failingSince = undefined;
        attempt = 0;
        if (e.invalid !== undefined) continue;
        const { record, ignored } = foldEvent(rec, e, held);
        rec = record;
        if (e.seq > opts.afterSeq) yield { event: e, record: rec, ignored };
        if (rec && isTerminalDeployment(rec.state)) return;
      }
      return;
    } catch (err) {
      if (opts.signal.aborted) return;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > WATCH_RETRY_MS) throw err;
      opts.onRetry?.(err, attempt);
      await delay(Math.min(250 * 2 ** attempt, 5000), undefined, { signal: opts.signal }).catch(() => undefined);
      if (opts.signal.aborted) return;
    }
  }
}
