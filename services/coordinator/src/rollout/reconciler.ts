// Drives rollouts. Woken by every event (through the coordinators' shared
// durable consumer) and by a periodic sweep of active deployments, it loads a
// deployment (KV caught up from the stream), appends the plan's decisions by
// compare-and-set on the deployment's coordinator subject, publishes the
// commands of dispatched targets, stores the projection, and releases the
// (app, environment) lock once the deployment is terminal.
//
// It holds nothing that is not rebuilt from JetStream: the in-memory sets
// below only save repeated work and are empty after a restart.
//
// Performance (issue 5; 2 cores, nats-server 2.9.10, a loaded machine): the
// record of a deployment this process reconciles is kept in memory and only
// caught up from the stream on the next wake (the stream is the truth, so a
// cached fold plus the events after its lastSeq is exactly the fold of the
// stream), instead of a KV get + JSON.parse of the whole projection per
// event; the projection is written at most every SAVE_INTERVAL_MS (and at
// once for a new or terminal deployment) instead of after every event (a
// lagging projection is safe: every read catches it up from the stream);
// a dispatched target's command goes out as soon as its event is
// acknowledged instead of after the whole batch; and the sweep skips a
// deployment reconciled within the last sweep interval.
import {
  COORDINATOR_CONSUMER,
  COORDINATOR_SOURCE,
  TARGETS_SOURCE,
  eventBudget,
  ConflictError,
  EVENTS_STREAM,
  activeKey,
  appendEvent,
  catchUp,
  isRaceDecision,
  foldEvent,
  fromJsMsg,
  isTerminalDeployment,
  isTerminalTarget,
  readProjection,
  parseEventSubject,
  saveProjection,
  ResourceExhaustedError,
  PreconditionError,
  errorMessage,
  type CommandSigner,
  type DeploymentRecord,
  type EventBody,
  type TargetState,
  type JsContext,
  type Logger,
  type ShardMemo,
} from "../../../shared/src/index.js";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { activeLocks, releaseLock } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { plan } from "./plan.js";
import { indexDeployment } from "../queries/deploymentIndex.js";
import { publishCommand, startLeaseFor } from "./publishCommand.js";

export interface ReconcilerOptions {
  agentLiveMs: number;
  applyTimeoutGraceMs: number;
  sweepIntervalMs: number;
  /** Signs every command published; none in unsigned development mode. */
  commandSigner?: CommandSigner;
  metrics?: CoordinatorMetrics;
  /** Records the desired release of a deployment that SUCCEEDED (releases/releaseBook.ts), before its lock is given back. */
  releases?: { record(rec: DeploymentRecord): Promise<unknown> };
  /** Called when this process frees an (app, environment) lock: convergence waiting on it goes on. */
  onLockReleased?: (app: string, environment: string) => void;
  /**
   * Asks for the automatic revert of a FAILED deployment with auto_revert
   * (releases/rollback.ts), before its lock is given back; idempotent.
   */
  revert?: (rec: DeploymentRecord) => Promise<void>;
  /** Which active deployments this coordinator sweeps (rollout/membership.ts); absent: all. */
  owner?: () => (deploymentId: string) => boolean;
}

interface Snapshot {
  state: DeploymentRecord["state"];
  targets: Map<string, TargetState>;
}

function snapshot(r: DeploymentRecord): Snapshot {
  return { state: r.state, targets: new Map(Object.entries(r.targets).map(([id, t]) => [id, t.state])) };
}

interface Slot {
  running: Promise<void>;
  again?: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
}

/**
 * Fault injection for the tests (test/convergence.test.ts): the process
 * kills itself between a deployment's finished SUCCEEDED event and the
 * desired release it makes, the crash the next reconcile repairs.
 */
const FAULT_KILL_BEFORE_DESIRED = process.env["DEPLOY_COORDINATOR_FAULT_KILL_BEFORE_DESIRED"] === "1";

// A rollout of N targets makes about N decisions; this bounds one pass so a
// single deployment cannot starve the others.
const MAX_ROUNDS = 10_000;

/**
 * The projection of a running deployment is written at most this often
 * (~250 KB of JSON at 1,000 targets, once per event before). A skipped write
 * is made by a timer, so KV lags the stream by at most about this long.
 */
export const SAVE_INTERVAL_MS = 250;

interface Cached {
  /** Exactly the fold of the deployment's events up to record.lastSeq. */
  record: DeploymentRecord;
  /** KV revision of the projection last read or written; 0: none. */
  kvRevision: number;
  /** lastSeq of that projection. */
  savedSeq: number;
  savedAt: number;
  reconciledAt: number;
  /** Its projection is larger than the server takes: not stored (warned once while it is cached). */
  tooLarge?: boolean;
  /** The shards of a large deployment's projection this process stored last: only changed ones are written again. */
  shards: ShardMemo;
  /** The state this process last wrote to the list index (queries/deploymentIndex.ts). */
  indexedState?: DeploymentRecord["state"];
}

export class Reconciler {
  readonly #slots = new Map<string, Slot>();
  /** Commands this process already published, "<deployment>.<agent>". */
  readonly #published = new Set<string>();
  /** Deployments this process reconciles, caught up from the stream at every wake. */
  readonly #cache = new Map<string, Cached>();
  /**
   * What woke the next reconcile of a deployment: only events (then the
   * highest of their sequences: that reconcile catches up to it, a stored
   * event, without asking for the deployment's last sequence), or anything
   * else too (a sweep or a timer: "full", catch up to the last event now).
   */
  readonly #wakes = new Map<string, { full: boolean; seq: number }>();
  /** Pending deferred projection writes. */
  readonly #saveTimers = new Map<string, NodeJS.Timeout>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #messages: ConsumerMessages | undefined;
  #consuming: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly ctx: JsContext,
    private readonly registry: Registry,
    private readonly opts: ReconcilerOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.ctx.js.consumers.get(EVENTS_STREAM, COORDINATOR_CONSUMER);
    // A short pull expiry: after a stream leader moves, the next pull finds
    // the new one within seconds, not the 30 s default.
    this.#messages = await consumer.consume({ max_messages: 1000, expires: 5000 });
    const messages = this.#messages;
    this.#consuming = (async () => {
      for await (const m of messages) {
        const parsed = parseEventSubject(m.subject);
        if (!parsed) {
          m.term();
          continue;
        }
        // A large deployment's target chunk, stored before its created
        // event: nothing to decide on (a reconcile would read every chunk
        // so far for nothing); its created event wakes the deployment.
        if (parsed.source === TARGETS_SOURCE) {
          m.ack();
          continue;
        }
        // Already folded into the record this process holds (its own
        // decisions, or events a catch-up read first): the reconcile that
        // folded it plans on it, so there is nothing to wake. Fan-out 1,000
        // woke ~1,000 reconciles for its own dispatch events before.
        const known = this.#cache.get(parsed.deploymentId);
        if (known && m.seq <= known.record.lastSeq) {
          m.ack();
          continue;
        }
        this.#wake(parsed.deploymentId, parsed.source, m).then(
          () => m.ack(),
          (err: unknown) => {
            this.log.warn({ deploymentId: parsed.deploymentId, err }, "reconcile failed; event will be redelivered");
            m.nak(1000);
          },
        );
      }
    })();
    this.#sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs);
    void this.sweep();
  }

  /** Every active deployment, every sweepIntervalMs: timeouts fire even when no event arrives. */
  async sweep(): Promise<void> {
    if (this.#sweeping || this.#stopped) return;
    this.#sweeping = true;
    try {
      const ids = new Set((await activeLocks(this.ctx)).map((l) => l.deploymentId));
      this.opts.metrics?.deploymentsActive.set(ids.size);
      for (const id of this.#cache.keys()) if (!ids.has(id) && !this.#slots.has(id)) this.#forget(id);
      // Each active deployment is swept by one live coordinator (its share);
      // events wake any. A deployment reconciled within the last interval
      // was examined recently enough: timeouts still fire within two intervals.
      const mine = this.opts.owner?.() ?? ((): boolean => true);
      const owned = [...ids].filter(mine);
      this.opts.metrics?.deploymentsOwned.set(owned.length);
      const now = Date.now();
      const due = owned.filter((id) => now - (this.#cache.get(id)?.reconciledAt ?? 0) >= this.opts.sweepIntervalMs);
      await Promise.all(due.map((id) => this.schedule(id).catch((err: unknown) => this.log.warn({ deploymentId: id, err }, "reconcile failed"))));
    } catch (err) {
      this.log.warn({ err }, "sweep failed");
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * An event delivered by the consumer. A deployment's created event holds
   * its whole first state: the record is folded from it here, not read from
   * KV and the stream (two round trips before the first decision; the
   * creating coordinator's own adopt usually comes later than this event).
   * A redelivered one may be old: that deployment is read as usual.
   */
  #wake(id: string, source: string, m: JsMsg): Promise<void> {
    if (source === COORDINATOR_SOURCE && !m.redelivered && !this.#cache.has(id) && !this.#slots.has(id)) {
      const e = fromJsMsg(m);
      const record = e.invalid === undefined && e.event.type === "deployment.created" ? foldEvent(undefined, e).record : undefined;
      if (record) return this.adopt(record, 0);
    }
    return this.schedule(id, m.seq);
  }

  /**
   * A deployment this process has just read or created: `record` (an exact
   * fold of its events, with no projection stored when kvRevision is 0)
   * becomes the cached one and its first reconcile starts at once, without
   * a KV get or a look for the last sequence (fan-out 10 in the bench: its
   * dispatch went out 25 ms after the create's answer before). When this
   * process already holds or reconciles the deployment, it only wakes it.
   */
  adopt(record: DeploymentRecord, kvRevision: number): Promise<void> {
    const id = record.spec.id;
    if (this.#stopped) return Promise.resolve();
    if (this.#cache.has(id) || this.#slots.has(id)) return this.schedule(id, record.lastSeq);
    this.#cache.set(id, { record, kvRevision, savedSeq: kvRevision === 0 ? 0 : record.lastSeq, savedAt: 0, reconciledAt: 0, shards: { digests: [], revisions: [] } });
    return this.schedule(id, record.lastSeq);
  }

  /**
   * Runs a reconcile of `id` that starts after this call; concurrent calls for
   * the same deployment share one pending run.
   */
  schedule(id: string, wokenBySeq?: number): Promise<void> {
    const wake = this.#wakes.get(id);
    this.#wakes.set(id, { full: wokenBySeq === undefined || (wake?.full ?? false), seq: Math.max(wake?.seq ?? 0, wokenBySeq ?? 0) });
    const slot = this.#slots.get(id);
    if (!slot) {
      const running = this.#run(id);
      this.#slots.set(id, { running });
      return running;
    }
    if (!slot.again) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      slot.again = { promise, resolve, reject };
    }
    return slot.again.promise;
  }

  async #run(id: string): Promise<void> {
    try {
      await this.reconcile(id);
    } catch (err) {
      // It may have folded events it did not get to act on: forget the
      // record, so their redelivery is not taken for "already handled".
      this.#forget(id);
      throw err;
    } finally {
      const slot = this.#slots.get(id);
      const again = slot?.again;
      if (again) {
        const running = this.#run(id);
        this.#slots.set(id, { running });
        running.then(again.resolve, again.reject);
      } else {
        this.#slots.delete(id);
      }
    }
  }

  async reconcile(id: string): Promise<DeploymentRecord | undefined> {
    const log = this.log.child({ deploymentId: id });
    const onInvalid = (seq: number, why: string): void => log.warn({ seq, why }, "skipping invalid event");
    // loadDeployment, unrolled to see the record before the catch-up:
    // transitions since then are the ones to count in metrics. The cached
    // record saves a KV get and a parse of the whole projection.
    const cached = this.#cache.get(id);
    let stored: DeploymentRecord | undefined;
    let kvRevision = 0;
    if (cached) {
      stored = cached.record;
      kvRevision = cached.kvRevision;
    } else {
      const fromKv = await readProjection(this.ctx, id);
      stored = fromKv?.record;
      kvRevision = fromKv?.revision ?? 0;
    }
    const savedSeq = cached ? cached.savedSeq : (stored?.lastSeq ?? 0);
    const before = stored && this.opts.metrics ? snapshot(stored) : undefined;
    // Woken only by events: catch up to the newest of them (later events
    // wake another reconcile), one round trip less per wake (sequential 100
    // in the bench: two reads per target before, one now). Otherwise, or
    // with no record yet, to the last event now.
    const wake = this.#wakes.get(id);
    this.#wakes.delete(id);
    const until = wake && !wake.full ? wake.seq : undefined;
    const loaded = await catchUp(this.ctx, id, stored, kvRevision, onInvalid, until);
    if (!loaded) return undefined;
    let { record } = loaded;
    const entry: Cached = cached ?? { record, kvRevision, savedSeq, savedAt: 0, reconciledAt: 0, shards: { digests: [], revisions: [] } };
    entry.record = record;
    this.#cache.set(id, entry);
    // Commands of targets dispatched in this pass, published as soon as
    // their event is acknowledged (before: after the whole batch).
    const early: Promise<unknown>[] = [];
    let rounds = 0;
    for (; rounds < MAX_ROUNDS && !this.#stopped; rounds++) {
      const planned = plan(record, {
        now: Date.now(),
        lastHeartbeat: (a) => this.registry.lastHeartbeat(a),
        agentLiveMs: this.opts.agentLiveMs,
        applyTimeoutGraceMs: this.opts.applyTimeoutGraceMs,
        eventBudgetBytes: eventBudget(this.ctx.nc),
      });
      if (planned.length === 0) break;
      // A delivery timeout or a cancel of a dispatched target races its
      // agent's start on the target's own subject (js/raceForTarget.ts); the
      // other decisions are chained on the coordinator subject.
      const raced = await this.#race(id, record, planned.filter(isRaceDecision), log);
      const decisions = planned.filter((d) => !isRaceDecision(d));
      // Chained compare-and-set: each append expects the previous one to be
      // the last coordinator event, so another coordinator's decision in
      // between makes ours fail instead of doubling it.
      let expect = record.lastCoordinatorSeq;
      // After our own appends, catching up to the last of them suffices
      // (unless a race was lost: then to what won it).
      let until: number | undefined = raced.lost ? undefined : raced.lastSeq;
      try {
        for (const d of decisions) {
          expect = await appendEvent(this.ctx, id, d, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: expect, cancelRequested: record.cancelRequested });
          const dispatched = d.type === "target.dispatched" ? [d.agentId] : d.type === "targets.dispatched" ? d.agentIds : [];
          for (const agentId of dispatched) {
            // Handled here, at once: if this reconcile fails before it awaits
            // these (a NATS leader lost mid-pass), an unhandled rejection
            // would end the process (chaos seed 3054 did exactly that). A
            // failed publish is retried by the next reconcile: the command is
            // not in #published.
            early.push(
              this.#publishOne(record.spec, agentId, log).catch((err: unknown) =>
                log.warn({ agentId, err: (err as Error).message }, "command not published yet; will retry"),
              ),
            );
          }
          this.opts.metrics?.decisions.inc({ type: d.type });
          log.debug({ type: d.type, agentId: "agentId" in d ? d.agentId : undefined, seq: expect }, "decision appended");
        }
        if (until !== undefined && decisions.length > 0) until = Math.max(until, expect);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        this.opts.metrics?.casConflicts.inc();
        log.debug("another coordinator decided first; reloading");
        until = undefined;
      }
      record = (await catchUp(this.ctx, id, record, loaded.kvRevision, onInvalid, until))!.record;
      entry.record = record;
    }
    this.#observe(before, record);
    if (rounds === MAX_ROUNDS) this.log.warn({ deploymentId: id }, "reconcile stopped after too many rounds");
    // A failed early publish is retried below, as any unpublished command.
    await Promise.allSettled(early);
    await this.#publishCommands(record, log);
    if (entry.indexedState !== record.state) {
      // Best effort: ListDeployments checks what it returns against the
      // deployment itself, so a lagging entry costs a load, never a wrong answer.
      try {
        await indexDeployment(this.ctx, record);
        entry.indexedState = record.state;
      } catch (err) {
        log.warn({ err: errorMessage(err) }, "list index not updated; retried by the next reconcile");
      }
    }
    const terminal = isTerminalDeployment(record.state);
    if (record.lastSeq > entry.savedSeq) {
      const wait = entry.kvRevision === 0 || terminal ? 0 : entry.savedAt + SAVE_INTERVAL_MS - Date.now();
      if (wait <= 0) {
        try {
          entry.kvRevision = await saveProjection(this.ctx, record, entry.kvRevision, entry.shards);
        } catch (err) {
          // Too large for the server: retrying would fail for ever (and, by
          // failing the reconcile, nak its event for ever). Go on without it.
          if (!(err instanceof ResourceExhaustedError)) throw err;
          if (!entry.tooLarge) log.warn({ err: err.message }, "projection not stored");
          entry.tooLarge = true;
        }
        entry.savedSeq = record.lastSeq;
        entry.savedAt = Date.now();
      } else if (!this.#saveTimers.has(id)) {
        const timer = setTimeout(() => {
          this.#saveTimers.delete(id);
          if (!this.#stopped) this.schedule(id).catch((err: unknown) => log.warn({ err }, "deferred projection write failed"));
        }, wait);
        timer.unref();
        this.#saveTimers.set(id, timer);
      }
    }
    entry.reconciledAt = Date.now();
    if (terminal) {
      await this.#release(record, log);
      this.#forget(id);
    }
    return record;
  }

  /** Drops what this process remembers of a deployment (it is reloaded from KV and the stream if woken again). */
  #forget(id: string): void {
    this.#cache.delete(id);
    const t = this.#saveTimers.get(id);
    if (t) clearTimeout(t);
    this.#saveTimers.delete(id);
  }

  async #publishOne(spec: DeploymentRecord["spec"], agentId: string, log: Logger): Promise<void> {
    const outcome = await publishCommand(this.ctx, spec, agentId, this.opts.commandSigner, startLeaseFor(this.opts.agentLiveMs));
    this.#published.add(`${spec.id}.${agentId}`);
    this.opts.metrics?.commands.inc({ outcome });
    log.debug({ agentId, outcome }, "command published");
  }

  async #publishCommands(record: DeploymentRecord, log: Logger): Promise<void> {
    const pending = Object.entries(record.targets)
      .filter(([agentId, t]) => t.state === "DISPATCHED" && !this.#published.has(`${record.spec.id}.${agentId}`))
      .map(([agentId]) => agentId);
    // Publishes are independent; sending them together turns N round trips
    // into about one.
    await Promise.all(pending.map((agentId) => this.#publishOne(record.spec, agentId, log)));
    if (isTerminalDeployment(record.state)) {
      for (const agentId of record.spec.targets) this.#published.delete(`${record.spec.id}.${agentId}`);
    }
  }

  /**
   * Appends each race decision on its target's own subject, expecting the
   * last sequence the record knows there: refused when the agent started
   * the target (or anyone wrote there) since. Returns the last sequence
   * stored, and whether any was refused (then the record must be caught up
   * to what won).
   */
  async #race(id: string, record: DeploymentRecord, races: EventBody[], log: Logger): Promise<{ lastSeq: number; lost: boolean }> {
    let lastSeq = 0;
    let lost = false;
    await Promise.all(
      races.map(async (d) => {
        if (!("agentId" in d)) return;
        try {
          const seq = await appendEvent(this.ctx, id, d, {
            source: d.agentId,
            expectLastSubjectSeq: record.targets[d.agentId]?.subjectSeq ?? 0,
            cancelRequested: record.cancelRequested,
          });
          lastSeq = Math.max(lastSeq, seq);
          this.opts.metrics?.decisions.inc({ type: d.type });
          log.debug({ type: d.type, agentId: d.agentId, seq }, "race decision appended");
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
          lost = true;
          this.opts.metrics?.casConflicts.inc();
          log.debug({ type: d.type, agentId: d.agentId }, "the agent (or another coordinator) wrote on the target first; reloading");
        }
      }),
    );
    return { lastSeq, lost };
  }

  /** Counts the transitions this reconcile folded (metrics only). */
  #observe(before: Snapshot | undefined, after: DeploymentRecord): void {
    const m = this.opts.metrics;
    if (!m) return;
    if (!(before && isTerminalDeployment(before.state)) && isTerminalDeployment(after.state)) m.deploymentsFinished.inc({ state: after.state });
    for (const [agentId, t] of Object.entries(after.targets)) {
      const was = before?.targets.get(agentId);
      if ((was !== undefined && isTerminalTarget(was)) || !isTerminalTarget(t.state)) continue;
      m.targetsFinished.inc({ state: t.state });
      if (t.dispatchedAt && t.finishedAt) m.targetDuration.observe({ state: t.state }, (Date.parse(t.finishedAt) - Date.parse(t.dispatchedAt)) / 1000);
    }
  }

  /**
   * Records the desired release a SUCCEEDED deployment made, then frees the
   * (app, environment) for the next deployment, by compare-and-set
   * (releaseLock). In that order: while a terminal deployment holds the
   * lock every sweep comes back here, so a crash (or a failed write)
   * between its finished event and the desired release is repaired by the
   * next reconcile, and the pair's next deployment cannot exist before it
   * (CreateDeployment records it too before taking such a lock over).
   */
  async #release(record: DeploymentRecord, log: Logger): Promise<void> {
    // The revert takes the lock over from this terminal deployment; until it
    // exists the lock is kept, so the next sweep asks again. Another
    // deployment of the pair that took the lock first wins (the revert is
    // then refused, and this lock is no longer ours to give back).
    if (record.state === "FAILED" && record.spec.strategy.autoRevert && this.opts.revert) {
      try {
        await this.opts.revert(record);
      } catch (err) {
        if (!(err instanceof PreconditionError)) {
          log.warn({ err: errorMessage(err) }, "auto_revert not requested yet; the lock is kept and the next sweep tries again");
          return;
        }
        log.warn({ err: err.message }, "auto_revert not made: another deployment of the pair started first");
      }
    }
    if (record.state === "SUCCEEDED" && this.opts.releases) {
      if (FAULT_KILL_BEFORE_DESIRED) process.kill(process.pid, "SIGKILL");
      try {
        await this.opts.releases.record(record);
      } catch (err) {
        log.warn({ err }, "could not record the desired release; the lock is kept and the next sweep tries again");
        return;
      }
    }
    try {
      if (await releaseLock(this.ctx, activeKey(record.spec.app, record.spec.environment), record.spec.id)) {
        log.info({ state: record.state }, "deployment finished; lock released");
        this.opts.onLockReleased?.(record.spec.app, record.spec.environment);
      }
    } catch (err) {
      // The next sweep finds the lock still held by a terminal deployment
      // and releases it again; CreateDeployment takes such a lock over.
      log.warn({ err }, "could not release the lock; retried by the next sweep");
    }
  }

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    for (const t of this.#saveTimers.values()) clearTimeout(t);
    this.#saveTimers.clear();
    this.#messages?.stop();
    await this.#consuming?.catch(() => undefined);
    await Promise.allSettled([...this.#slots.values()].map((s) => s.running));
    // Deferred projection writes, best effort (a lagging projection is caught up on read anyway).
    await Promise.allSettled(
      [...this.#cache.values()].filter((c) => c.record.lastSeq > c.savedSeq).map((c) => saveProjection(this.ctx, c.record, c.kvRevision, c.shards)),
    );
  }
}
