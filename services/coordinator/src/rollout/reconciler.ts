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
  isTerminalDeployment,
  loadDeployment,
  parseEventSubject,
  saveProjection,
  type DeploymentRecord,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { ConsumerMessages } from "@nats-io/jetstream";
import { parseLock } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import { plan } from "./plan.js";
import { publishCommand } from "./publishCommand.js";

export interface ReconcilerOptions {
  agentLiveMs: number;
  applyTimeoutGraceMs: number;
  sweepIntervalMs: number;
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
    this.#messages = await consumer.consume({ max_messages: 1000 });
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
    const loaded = await loadDeployment(this.ctx, id, onInvalid);
    if (!loaded) return undefined;
    let { record } = loaded;
    let rounds = 0;
    for (; rounds < MAX_ROUNDS && !this.#stopped; rounds++) {
      const decisions = plan(record, {
        now: Date.now(),
        lastHeartbeat: (a) => this.registry.lastHeartbeat(a),
        agentLiveMs: this.opts.agentLiveMs,
        applyTimeoutGraceMs: this.opts.applyTimeoutGraceMs,
      });
      if (decisions.length === 0) break;
      // Chained compare-and-set: each append expects the previous one to be
      // the last coordinator event, so another coordinator's decision in
      // between makes ours fail instead of doubling it.
      let expect = record.lastCoordinatorSeq;
      try {
        for (const d of decisions) {
          expect = await appendEvent(this.ctx, id, d, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: expect });
          log.debug({ type: d.type, agentId: "agentId" in d ? d.agentId : undefined, seq: expect }, "decision appended");
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        log.debug("another coordinator decided first; reloading");
      }
      record = (await catchUp(this.ctx, id, record, loaded.kvRevision, onInvalid))!.record;
    }
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
        const outcome = await publishCommand(this.ctx, record.spec, agentId);
        this.#published.add(`${record.spec.id}.${agentId}`);
        log.debug({ agentId, outcome }, "command published");
      }),
    );
    if (isTerminalDeployment(record.state)) {
      for (const agentId of record.spec.targets) this.#published.delete(`${record.spec.id}.${agentId}`);
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
