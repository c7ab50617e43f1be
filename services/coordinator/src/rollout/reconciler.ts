// Drives rollouts. Woken by every event (through the coordinators' shared
// durable consumer) and by a periodic sweep of active deployments, it loads a
// deployment (KV caught up from the stream), appends the plan's decisions by
// compare-and-set on the deployment's coordinator subject, publishes the
// commands of dispatched targets, stores the projection, and releases the
// (app, environment) lock once the deployment is terminal.
//
// It holds nothing that is not rebuilt from JetStream: the in-memory sets
// below only save repeated work and are empty after a restart.
import {
  ACTIVE_FILTER,
  COORDINATOR_CONSUMER,
  COORDINATOR_SOURCE,
  ConflictError,
  EVENTS_STREAM,
  activeKey,
  appendEvent,
  catchUp,
  claimTarget,
  isTerminalDeployment,
  isTerminalTarget,
  parseProjection,
  parseEventSubject,
  saveProjection,
  type CommandSigner,
  type DeploymentRecord,
  type EventBody,
  type TargetState,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { ConsumerMessages } from "@nats-io/jetstream";
import { parseLock } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { plan } from "./plan.js";
import { publishCommand } from "./publishCommand.js";

export interface ReconcilerOptions {
  agentLiveMs: number;
  applyTimeoutGraceMs: number;
  sweepIntervalMs: number;
  /** Signs every command published; none in unsigned development mode. */
  commandSigner?: CommandSigner;
  metrics?: CoordinatorMetrics;
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

// A rollout of N targets makes about N decisions; this bounds one pass so a
// single deployment cannot starve the others.
const MAX_ROUNDS = 10_000;

export class Reconciler {
  readonly #slots = new Map<string, Slot>();
  /** Targets whose claim their agent holds (final once seen), "<deployment>.<agent>". */
  readonly #agentClaims = new Set<string>();
  /** Commands this process already published, "<deployment>.<agent>". */
  readonly #published = new Set<string>();
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
        this.schedule(parsed.deploymentId).then(
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
      const ids = new Set<string>();
      const keys: string[] = [];
      for await (const k of await this.ctx.deployments.keys(ACTIVE_FILTER)) keys.push(k);
      for (const k of keys) {
        const e = await this.ctx.deployments.get(k);
        const lock = parseLock(e);
        if (lock) ids.add(lock.deploymentId);
      }
      this.opts.metrics?.deploymentsActive.set(ids.size);
      await Promise.all([...ids].map((id) => this.schedule(id).catch((err: unknown) => this.log.warn({ deploymentId: id, err }, "reconcile failed"))));
    } catch (err) {
      this.log.warn({ err }, "sweep failed");
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Runs a reconcile of `id` that starts after this call; concurrent calls for
   * the same deployment share one pending run.
   */
  schedule(id: string): Promise<void> {
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
    // loadDeployment, unrolled to see the projection as stored before the
    // catch-up: transitions since then are the ones to count in metrics.
    const entry = await this.ctx.deployments.get(id);
    const stored = parseProjection(entry);
    const before = stored ? snapshot(stored) : undefined;
    const loaded = await catchUp(this.ctx, id, stored, stored && entry ? entry.revision : 0, onInvalid);
    if (!loaded) return undefined;
    let { record } = loaded;
    let rounds = 0;
    for (; rounds < MAX_ROUNDS && !this.#stopped; rounds++) {
      const planned = plan(record, {
        now: Date.now(),
        lastHeartbeat: (a) => this.registry.lastHeartbeat(a),
        agentLiveMs: this.opts.agentLiveMs,
        applyTimeoutGraceMs: this.opts.applyTimeoutGraceMs,
        claimedByAgent: (a) => this.#agentClaims.has(`${id}.${a}`),
      });
      if (planned.length === 0) break;
      const decisions = await this.#claimFirst(id, planned);
      if (decisions.length === 0) continue; // every claim went to an agent: plan again knowing it
      // Chained compare-and-set: each append expects the previous one to be
      // the last coordinator event, so another coordinator's decision in
      // between makes ours fail instead of doubling it.
      let expect = record.lastCoordinatorSeq;
      try {
        for (const d of decisions) {
          expect = await appendEvent(this.ctx, id, d, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: expect });
          this.opts.metrics?.decisions.inc({ type: d.type });
          log.debug({ type: d.type, agentId: "agentId" in d ? d.agentId : undefined, seq: expect }, "decision appended");
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        this.opts.metrics?.casConflicts.inc();
        log.debug("another coordinator decided first; reloading");
      }
      record = (await catchUp(this.ctx, id, record, loaded.kvRevision, onInvalid))!.record;
    }
    this.#observe(before, record);
    if (rounds === MAX_ROUNDS) this.log.warn({ deploymentId: id }, "reconcile stopped after too many rounds");
    await this.#publishCommands(record, log);
    if (record.lastSeq > loaded.kvLastSeq) await saveProjection(this.ctx, record, loaded.kvRevision);
    if (isTerminalDeployment(record.state)) await this.#release(record, log);
    return record;
  }

  async #publishCommands(record: DeploymentRecord, log: Logger): Promise<void> {
    const pending = Object.entries(record.targets)
      .filter(([agentId, t]) => t.state === "DISPATCHED" && !this.#published.has(`${record.spec.id}.${agentId}`))
      .map(([agentId]) => agentId);
    // Publishes are independent; sending them together turns N round trips
    // into about one.
    await Promise.all(
      pending.map(async (agentId) => {
        const outcome = await publishCommand(this.ctx, record.spec, agentId, this.opts.commandSigner);
        this.#published.add(`${record.spec.id}.${agentId}`);
        this.opts.metrics?.commands.inc({ outcome });
        log.debug({ agentId, outcome }, "command published");
      }),
    );
    if (isTerminalDeployment(record.state)) {
      for (const agentId of record.spec.targets) {
        this.#published.delete(`${record.spec.id}.${agentId}`);
        this.#agentClaims.delete(`${record.spec.id}.${agentId}`);
      }
    }
  }

  /**
   * A coordinator may time out (delivery) or cancel a dispatched target only
   * after winning its claim; a target whose agent claimed it first is left to
   * the agent (and remembered, so the plan treats it as applying).
   */
  async #claimFirst(id: string, planned: EventBody[]): Promise<EventBody[]> {
    const outcomes = await Promise.all(
      planned.map(async (d) => {
        const reason = d.type === "target.cancelled" ? "cancel" : d.type === "target.timed_out" && d.phase === "delivery" ? "timeout" : undefined;
        if (!reason || !("agentId" in d)) return d;
        const claim = await claimTarget(this.ctx, id, d.agentId, { by: "coordinator", reason });
        if (claim.won) return d;
        this.#agentClaims.add(`${id}.${d.agentId}`);
        return undefined;
      }),
    );
    return outcomes.filter((d): d is EventBody => d !== undefined);
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

  /** Frees the (app, environment) for the next deployment, by compare-and-set. */
  async #release(record: DeploymentRecord, log: Logger): Promise<void> {
    const key = activeKey(record.spec.app, record.spec.environment);
    const e = await this.ctx.deployments.get(key);
    if (parseLock(e)?.deploymentId !== record.spec.id) return;
    try {
      await this.ctx.deployments.delete(key, { previousSeq: e!.revision });
      log.info({ state: record.state }, "deployment finished; lock released");
    } catch (err) {
      log.debug({ err }, "lock changed while releasing");
    }
  }

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#messages?.stop();
    await this.#consuming?.catch(() => undefined);
    await Promise.allSettled([...this.#slots.values()].map((s) => s.running));
  }
}
