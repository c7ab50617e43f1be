// Reading state: the deployments this coordinator reconciles, each an exact
// fold of its events up to record.lastSeq, kept in memory between wakes and
// caught up from what the stream holds beyond it. The stream is the truth: a
// cached fold plus the events after its lastSeq is exactly the fold of the
// stream, so a wake costs the new events, not a KV get and a parse of the
// whole projection.
//
// The events delivered to this process (the coordinators' wake-up consumer)
// are kept per deployment too: when every message of the stream since the
// record's last event was delivered here, the catch-up folds those instead
// of asking the server for them again.
//
// A catch-up to this process's own appends (a reconcile's decisions) comes
// a moment after their publish acknowledgement and before their delivery:
// it waits for the delivery (at most DELIVERY_WAIT_MS) rather than reading
// them back, one request per event. The fold needs the stream's time of each
// event, which an acknowledgement does not carry. It waits only while the
// deliveries have been this process's alone for a while: with several
// coordinators the consumer shares them out, and ours may go elsewhere.
import type { JsMsg } from "@nats-io/jetstream";
import {
  catchUp,
  foldEvent,
  lastDeploymentEventSeq,
  fromJsMsg,
  readProjection,
  skipUnreadable,
  targetIds,
  type DeploymentRecord,
  type JsContext,
  type LoadedDeployment,
  type ReadEvent,
  type ShardMemo,
  type TargetRecord,
} from "../../../shared/src/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import type { PlanMemo } from "./plan.js";

export interface Cached {
  /** Exactly the fold of the deployment's events up to record.lastSeq. */
  record: DeploymentRecord;
  /** KV revision of the projection last read or written; 0: none. */
  kvRevision: number;
  /** lastSeq of that projection. */
  savedSeq: number;
  /** When this process last wrote the projection (epoch ms; 0: never). */
  savedAt: number;
  /** When this process first projected the deployment (epoch ms): a new one's first write waits SAVE_INTERVAL_MS from here (projector.ts). */
  firstProjectedAt?: number;
  reconciledAt: number;
  /** Its projection is larger than the server takes: not stored (warned once while it is cached). */
  tooLarge?: boolean;
  /** The shards of a large deployment's projection this process stored last: only changed ones are written again. */
  shards: ShardMemo;
  /** The terminal state this process wrote to the list index (queries/deploymentIndex.ts). */
  indexedState?: DeploymentRecord["state"];
  /** What plans of this deployment learned about it (plan.ts PlanMemo): facts about its events, so true of any record of it caught up further. */
  planMemo?: PlanMemo;
  /** The targets not terminal after the last pass that counted them (reconciler.ts, metrics only). */
  open?: Set<string>;
  /** Where the last pass's metrics stopped in the fold's list of finished targets of `of` (fold.ts finishedSince; reconciler.ts, metrics only). */
  finished?: { of: Record<string, TargetRecord>; next: number };
}

type OnInvalid = (seq: number, why: string) => void;

/** TargetRecord, which copyOf copies shallowly: a field that holds an object makes copyOf fail to compile. */
type FlatTarget = { [K in keyof TargetRecord]: TargetRecord[K] extends string | number | boolean | undefined ? TargetRecord[K] : never };

/**
 * The longest a catch-up waits for the delivery of an event stored already
 * (its own append). Deliveries come within about a millisecond of the
 * acknowledgement; a stalled consumer (a stream leader moving) costs this
 * once per catch-up before it reads the stream instead.
 */
export const DELIVERY_WAIT_MS = 50;
/** Deliveries one after another for this long: no other coordinator takes any (a shared consumer's deliveries have gaps). */
const SOLE_CONSUMER_MS = 2_000;

export class DeploymentStates {
  readonly #cache = new Map<string, Cached>();
  /**
   * Stream sequences [from, to] of which every message was delivered to this
   * process (consumer deliveries one after another: the consumer's filter is
   * the whole stream, and with ack none nothing is delivered twice); the
   * delivery sequence of the last one.
   */
  #window = { from: 0, to: 0, delivery: -1 };
  /** When the window last began (epoch ms): a gap in the deliveries, or the first one. */
  #windowSince = 0;
  /** Catch-ups waiting for the delivery of stream sequence `seq` (or a gap). */
  readonly #waiting = new Set<{ seq: number; done: () => void }>();
  /**
   * Per deployment being reconciled here: the events delivered since the
   * collection began (`from`: the last stream sequence delivered then), not
   * folded yet.
   */
  readonly #delivered = new Map<string, { from: number; events: ReadEvent[] }>();

  constructor(
    private readonly ctx: Pick<JsContext, "js" | "jsm" | "deployments">,
    private readonly metrics?: CoordinatorMetrics,
  ) {}

  get(id: string): Cached | undefined {
    return this.#cache.get(id);
  }

  /**
   * A copy of the fold held for `id` (GetDeployment folds later events into
   * it; the reconciler's own goes on undisturbed), or undefined. The spec is
   * shared: no event changes it. A target's record has only plain fields
   * (FlatTarget), so each is copied shallowly: 10,000 targets take ~4 ms
   * that way and 26-33 ms with structuredClone (a micro-bench, one core).
   */
  copyOf(id: string): DeploymentRecord | undefined {
    const c = this.#cache.get(id);
    if (!c) return undefined;
    const { spec, targets, ...rest } = c.record;
    const copied: Record<string, FlatTarget> = {};
    for (const t of targetIds(c.record)) copied[t] = { ...targets[t]! };
    return { ...structuredClone(rest), spec, targets: copied };
  }

  /**
   * copyOf, caught up as far as the events delivered here allow: when every
   * event of the deployment after the fold was delivered here, those not
   * folded yet are folded into the copy. GetDeployment then reads from the
   * stream only what was stored after the last delivery. A pass that takes
   * long holds the fold back while deliveries pile up: the first dispatch
   * of a fan-out of 10,000 published commands for 20 s, and each
   * GetDeployment meanwhile read back from the stream every event after the
   * created event, up to 10,000 a call (in the bench's warm fan-out of
   * 10,000, a call every 2 s, agents' events went out 10.19 times a target
   * where the wake-up consumer and the watch need 4).
   */
  deliveredCopyOf(id: string): DeploymentRecord | undefined {
    const rec = this.copyOf(id);
    const kept = this.#delivered.get(id);
    if (!rec || !kept || !this.#contiguous(kept, rec)) return rec;
    return this.#foldKept(rec, kept.events, this.#window.to);
  }

  /** Folds into `rec` (in place) the kept events after its last sequence, up to `untilSeq`, in stream order. */
  #foldKept(rec: DeploymentRecord, events: readonly ReadEvent[], untilSeq: number, onInvalid?: OnInvalid): DeploymentRecord {
    let folded = rec;
    for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
      if (e.seq <= folded.lastSeq || e.seq > untilSeq) continue;
      if (e.invalid !== undefined) {
        onInvalid?.(e.seq, e.invalid);
        skipUnreadable(folded, e);
      } else {
        folded = foldEvent(folded, e).record ?? folded;
      }
    }
    return folded;
  }

  has(id: string): boolean {
    return this.#cache.has(id);
  }

  ids(): IterableIterator<string> {
    return this.#cache.keys();
  }

  entries(): IterableIterator<Cached> {
    return this.#cache.values();
  }

  /**
   * A message the consumer delivered: extends or restarts the window, and is
   * kept for its deployment when that one is being collected. False when the
   * event is folded already (nothing to wake).
   */
  delivered(m: JsMsg, deploymentId: string | undefined): boolean {
    const w = this.#window;
    const delivery = m.info.deliverySequence;
    const extends_ = delivery === w.delivery + 1 && m.seq > w.to;
    this.#window = extends_ ? { from: w.from, to: m.seq, delivery } : { from: m.seq, to: m.seq, delivery };
    if (!extends_) this.#windowSince = Date.now();
    let fresh = false;
    if (deploymentId !== undefined) {
      const known = this.#cache.get(deploymentId);
      if (!known || m.seq > known.record.lastSeq) {
        this.#delivered.get(deploymentId)?.events.push(fromJsMsg(m));
        fresh = true;
      }
    }
    // After the event is kept: a waiting catch-up folds it.
    for (const waiter of this.#waiting) if (!extends_ || m.seq >= waiter.seq) waiter.done();
    return fresh;
  }

  /**
   * Waits until the consumer has delivered stream sequence `seq` here, when
   * every message before it was delivered here and nothing else takes
   * deliveries; at most DELIVERY_WAIT_MS, or until a gap in the deliveries.
   */
  async #awaitDelivery(seq: number): Promise<void> {
    if (this.#window.to >= seq || this.#windowSince === 0 || Date.now() - this.#windowSince < SOLE_CONSUMER_MS) return;
    await new Promise<void>((resolve) => {
      const waiter = {
        seq,
        done: (): void => {
          clearTimeout(timer);
          this.#waiting.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, DELIVERY_WAIT_MS);
      this.#waiting.add(waiter);
    });
  }

  /** A record this process made or read whole (a created event): cached as is, no projection stored when kvRevision is 0. */
  adopt(record: DeploymentRecord, kvRevision: number): void {
    const id = record.spec.id;
    this.#collect(id);
    this.#cache.set(id, { record, kvRevision, savedSeq: kvRevision === 0 ? 0 : record.lastSeq, savedAt: 0, reconciledAt: 0, shards: { digests: [], revisions: [] } });
  }

  /**
   * The cached entry, or the stored projection read from KV (not cached yet:
   * see keep) with every event delivered from now on kept, so that those
   * after what the reads return can be folded from what was delivered.
   */
  async stored(id: string): Promise<{ cached?: Cached; record?: DeploymentRecord; kvRevision: number; savedSeq: number }> {
    const cached = this.#cache.get(id);
    if (cached) return { cached, record: cached.record, kvRevision: cached.kvRevision, savedSeq: cached.savedSeq };
    this.#collect(id);
    const fromKv = await readProjection(this.ctx, id);
    const record = fromKv?.record;
    return { ...(record ? { record } : {}), kvRevision: fromKv?.revision ?? 0, savedSeq: record?.lastSeq ?? 0 };
  }

  /** Caches a record first read by stored(). */
  keep(id: string, entry: Cached): void {
    this.#cache.set(id, entry);
  }

  /** Drops what this process remembers of a deployment (it is read again from KV and the stream if woken again). */
  forget(id: string): void {
    this.#cache.delete(id);
    this.#delivered.delete(id);
  }

  /**
   * Folds the events after record.lastSeq, up to `untilSeq` when given (a
   * prefix of the stream is still an exact fold) or the deployment's last
   * event now. From the events delivered here when they are known to be
   * all of the deployment's in that range: the record was folded past the
   * start of their collection, and every stream message from the record's
   * last sequence to `untilSeq` was delivered here (with no bound, that
   * sequence is asked for first: one request). Otherwise (other
   * coordinators taking deliveries; this process's own appends, not
   * delivered within DELIVERY_WAIT_MS) from the stream, each event a
   * request to the server.
   */
  async catchUp(id: string, record: DeploymentRecord | undefined, kvRevision: number, onInvalid: OnInvalid, untilSeq: number | undefined): Promise<LoadedDeployment | undefined> {
    // Folded that far already (a deferred projection write with nothing
    // delivered since): nothing to read, nothing to wait for.
    if (record && untilSeq !== undefined && untilSeq <= record.lastSeq) return { record, kvRevision, kvLastSeq: record.lastSeq };
    const kept = this.#delivered.get(id);
    const contiguous = (): boolean => this.#contiguous(kept, record);
    // To the last event now (a sweep, a timer), with every event after the
    // fold delivered here: one request for that sequence, then the
    // deliveries, instead of reading back what was delivered (a request per
    // event, past 16 an ordered consumer). Sweeps of a fan-out of 1,000
    // read 3-4 times a deployment up to ~800 events each that way.
    if (untilSeq === undefined && contiguous()) untilSeq = await lastDeploymentEventSeq(this.ctx, id);
    if (untilSeq !== undefined && untilSeq > this.#window.to && contiguous()) await this.#awaitDelivery(untilSeq);
    let loaded: LoadedDeployment | undefined;
    if (kept && record && untilSeq !== undefined && contiguous() && untilSeq <= this.#window.to) {
      const kvLastSeq = record.lastSeq;
      const rec = this.#foldKept(record, kept.events, untilSeq, onInvalid);
      this.metrics?.catchUps.inc({ from: "deliveries" });
      loaded = { record: rec, kvRevision, kvLastSeq };
    } else {
      loaded = await catchUp(this.ctx, id, record, kvRevision, onInvalid, untilSeq);
      this.metrics?.catchUps.inc({ from: "stream" });
    }
    if (kept && loaded) {
      const last = loaded.record.lastSeq;
      kept.events = kept.events.filter((e) => e.seq > last);
    }
    return loaded;
  }

  /** Every event after `record` that the stream holds up to the window's end was delivered here (and kept, when not folded yet). */
  #contiguous(kept: { from: number } | undefined, record: DeploymentRecord | undefined): boolean {
    return kept !== undefined && record !== undefined && record.lastSeq >= kept.from && record.lastSeq + 1 >= this.#window.from;
  }

  /**
   * How far a reconcile that needs no look at the stream's end (a deferred
   * projection write) can catch `id` up from this process's deliveries
   * alone: the last of its events delivered here, when every event after
   * the cached fold was delivered here; otherwise undefined (catch up to the
   * deployment's last event now, from the stream). Events stored and not
   * delivered yet wake reconciles of their own.
   */
  deliveredThrough(id: string): number | undefined {
    const cached = this.#cache.get(id);
    const kept = this.#delivered.get(id);
    if (!cached || !kept || !this.#contiguous(kept, cached.record)) return undefined;
    return kept.events.reduce((seq, e) => Math.max(seq, e.seq), cached.record.lastSeq);
  }

  #collect(id: string): void {
    this.#delivered.set(id, { from: this.#window.to, events: [] });
  }
}
