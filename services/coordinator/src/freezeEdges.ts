// A freeze that starts or stops refusing deployments by itself: a window of a
// recurring freeze opening or closing ("fri 15:00-mon 08:00"), or a timed
// freeze (`--for 2h`) ending. Nothing is written at those moments, so the
// notifier, which hears of writes to deploy_freezes, had nothing to say. Each
// coordinator with freeze notifications on now compares, every EDGE_TICK_MS,
// each freeze's state with its state at the previous tick; on a change it
// finds the edge's exact time (the first millisecond in the new state, the
// same for every coordinator whatever its tick) and creates the marker
// =edge.<freeze key>.<ms> in deploy_freezes, holding the freeze as it was.
// KV create stores it once, whichever coordinators saw it; the notifier's
// consumer on the bucket delivers it at least once, as it does a freeze.
//
// "=" is in no environment name (names.ts TOKEN), so a marker is never read
// as a freeze (freezes.ts). A change of the freeze itself (its revision) is
// not an edge: its write is notified. An edge while no coordinator ran is
// found by the first look after: the state last told of a freeze is its
// last marker's (for this very freeze), else its write's; when the state
// now differs, the last edge since then is recorded, late, at its own time
// (an outage that spans several edges tells of the last one only, the one
// that explains the state now). Markers older than EDGE_MARKERS_KEPT_MS are
// purged (no delete marker left), hourly; a state last told of longer ago
// than that is only learnt.
import type { KV } from "@nats-io/kv";
import {
  FREEZES_BUCKET,
  errorMessage,
  freezeActive,
  kvKeySubject,
  kvStreamName,
  parseFreezeRecord,
  type FreezeRecord,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";

export const EDGE_PREFIX = "=edge.";
const EDGE_TICK_MS = 5000;
const EDGE_MARKERS_KEPT_MS = 7 * 24 * 3600 * 1000;
const CLEANUP_EVERY_MS = 3600 * 1000;

export type EdgeKind = "window_opened" | "window_closed" | "ended";

/** The value of a marker: the edge, when it was, and the freeze it belongs to as it was then. */
export interface FreezeEdge {
  edge: EdgeKind;
  at: string;
  freeze: FreezeRecord;
}

export const isEdgeKey = (key: string): boolean => key.startsWith(EDGE_PREFIX);

/** The marker's key: the freeze's key and the edge's time in ms. */
export const edgeKey = (freezeKey: string, atMs: number): string => `${EDGE_PREFIX}${freezeKey}.${atMs}`;

/** A marker read back, or a clear error naming what is wrong. */
export function parseFreezeEdge(data: Uint8Array, key: string): FreezeEdge {
  const o = JSON.parse(new TextDecoder().decode(data)) as Partial<FreezeEdge> | null;
  if (!o || (o.edge !== "window_opened" && o.edge !== "window_closed" && o.edge !== "ended") || typeof o.at !== "string") {
    throw new Error(`freeze edge ${key}: not an edge`);
  }
  const freezeKey = key.slice(EDGE_PREFIX.length).replace(/\.\d+$/, "");
  return { edge: o.edge, at: o.at, freeze: parseFreezeRecord(new TextEncoder().encode(JSON.stringify(o.freeze)), freezeKey) };
}

/** The first millisecond in (from, to] at which `active` is `to`'s: the edge, for an interval holding one. */
export function edgeTime(active: (ms: number) => boolean, fromMs: number, toMs: number): number {
  const after = active(toMs);
  let lo = fromMs;
  let hi = toMs;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (active(mid) === after) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The last edge in (fromMs, toMs], for `active` different at the two ends:
 * found a minute at a time back from `toMs` (a window's edges are on
 * minutes; a timed freeze ends on any millisecond), then to the millisecond.
 * Between two looks 5 s apart it is edgeTime; after an outage, the edge
 * that explains the state now.
 */
export function lastEdgeTime(active: (ms: number) => boolean, fromMs: number, toMs: number, stepMs = 60_000): number {
  const now = active(toMs);
  let hi = toMs;
  let lo = Math.max(fromMs, hi - stepMs);
  while (lo > fromMs && active(lo) === now) {
    hi = lo;
    lo = Math.max(fromMs, lo - stepMs);
  }
  return edgeTime(active, lo, hi);
}

/** Which edge a change of state at `atMs` is. */
function kindOf(r: FreezeRecord, nowActive: boolean, atMs: number): EdgeKind {
  if (nowActive) return "window_opened";
  return r.until !== undefined && Date.parse(r.until) <= atMs ? "ended" : "window_closed";
}

export interface FreezeEdgeSource {
  /** Every freeze as stored, with its key and revision. */
  entries(): { key: string; record: FreezeRecord; revision: number }[];
}

export interface FreezeEdgeWatch {
  stop(): Promise<void>;
}

/**
 * The comparison: `check(t)` looks at every freeze at `t` (the servers'
 * clock, on which a freeze's times are) against the previous look, and
 * creates a marker in `kv` (deploy_freezes) for each edge between the two.
 */
export class FreezeEdgeWatcher {
  readonly #seen = new Map<string, { revision: number; active: boolean; atMs: number }>();
  #lastCleanup = 0;
  /** The first look's time: a freeze written since is compared from its write. */
  #since: number | undefined;
  #firstDone = false;

  constructor(
    private readonly ctx: Pick<JsContext, "jsm">,
    private readonly kv: Pick<KV, "create" | "keys" | "get">,
    private readonly freezes: FreezeEdgeSource,
    private readonly log: Logger,
  ) {}

  /**
   * The state last told of a freeze written before the first look, and
   * when: its last edge marker for this very freeze (a marker holds the
   * freeze as it was: the same `at`), else its write. Undefined when that
   * is older than the markers are kept (purged markers would make it
   * wrong), when the markers cannot be read, or after the first look (a
   * freeze appearing later was written while watched).
   */
  async #lastTold(key: string, record: FreezeRecord, t: number): Promise<{ active: boolean; atMs: number } | undefined> {
    if (this.#firstDone) return undefined;
    const written = Date.parse(record.at);
    let told = { active: freezeActive(record, written), atMs: written };
    try {
      const times: number[] = [];
      for await (const k of await this.kv.keys(`${EDGE_PREFIX}${key}.*`)) {
        const ms = Number(k.slice(`${EDGE_PREFIX}${key}.`.length));
        if (Number.isInteger(ms) && ms > written && ms <= t) times.push(ms);
      }
      for (const ms of times.sort((a, b) => b - a)) {
        const e = await this.kv.get(edgeKey(key, ms));
        if (!e || e.operation !== "PUT") continue;
        const edge = parseFreezeEdge(e.value, edgeKey(key, ms));
        if (edge.freeze.at !== record.at) continue;
        told = { active: edge.edge === "window_opened", atMs: ms };
        break;
      }
    } catch (err) {
      this.log.debug({ key, err: errorMessage(err) }, "cannot read this freeze's edges; its state now is only learnt");
      return undefined;
    }
    return t - told.atMs <= EDGE_MARKERS_KEPT_MS ? told : undefined;
  }

  async check(t: number): Promise<void> {
    this.#since ??= t;
    const present = new Set<string>();
    for (const { key, record, revision } of this.freezes.entries()) {
      present.add(key);
      const active = freezeActive(record, t);
      let before = this.#seen.get(key);
      this.#seen.set(key, { revision, active, atMs: t });
      if (!before || before.revision !== revision) {
        // New to this look, or rewritten since the last: its write was
        // notified as it was then; what changed after it, within our
        // watch, is an edge (a freeze of 2 s ends between two looks).
        // Written before our first look: compared from what was last told
        // of it (its last marker, or its write), so an edge while no
        // coordinator ran is told late rather than never.
        const written = Date.parse(record.at);
        const known = written >= this.#since && written < t ? { active: freezeActive(record, written), atMs: written } : await this.#lastTold(key, record, t);
        if (!known) continue;
        before = { revision, ...known };
      }
      if (before.active === active) continue;
      const at = lastEdgeTime((ms) => freezeActive(record, ms), before.atMs, t);
      const edge: FreezeEdge = { edge: kindOf(record, active, at), at: new Date(at).toISOString(), freeze: record };
      try {
        await this.kv.create(edgeKey(key, at), JSON.stringify(edge));
        this.log.info({ key, edge: edge.edge, at: edge.at }, "freeze edge recorded");
      } catch (err) {
        // Recorded by another coordinator first (or NATS is away: the edge is not notified).
        this.log.debug({ key, edge: edge.edge, err: errorMessage(err) }, "freeze edge not recorded here");
      }
    }
    for (const key of this.#seen.keys()) if (!present.has(key)) this.#seen.delete(key);
    this.#firstDone = true;
    if (t - this.#lastCleanup >= CLEANUP_EVERY_MS) {
      this.#lastCleanup = t;
      await purgeOldEdges(this.ctx, this.kv, t).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, "could not purge old freeze edges; next hour"));
    }
  }
}

/** Starts a FreezeEdgeWatcher's check every EDGE_TICK_MS; `now` is the servers' clock. */
export function watchFreezeEdges(ctx: Pick<JsContext, "jsm">, kv: KV, freezes: FreezeEdgeSource, now: () => number, log: Logger): FreezeEdgeWatch {
  const watcher = new FreezeEdgeWatcher(ctx, kv, freezes, log);
  let stopped = false;
  const check = (): Promise<void> => watcher.check(now()).catch((err: unknown) => log.warn({ err: errorMessage(err) }, "freeze edge check failed"));
  // The first look records the states the next ones are compared with.
  let running = check();
  const timer = setInterval(() => {
    if (!stopped) running = running.then(check);
  }, EDGE_TICK_MS);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/** Purges the markers of edges older than EDGE_MARKERS_KEPT_MS (by the time in their key). */
async function purgeOldEdges(ctx: Pick<JsContext, "jsm">, kv: Pick<KV, "keys">, nowMs: number): Promise<void> {
  const old: string[] = [];
  for await (const key of await kv.keys(`${EDGE_PREFIX}>`)) {
    const ms = Number(/\.(\d+)$/.exec(key)?.[1]);
    if (Number.isFinite(ms) && nowMs - ms > EDGE_MARKERS_KEPT_MS) old.push(key);
  }
  for (const key of old) await ctx.jsm.streams.purge(kvStreamName(FREEZES_BUCKET), { filter: kvKeySubject(FREEZES_BUCKET, key) });
}
