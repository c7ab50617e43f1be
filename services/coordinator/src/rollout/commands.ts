// Publishing commands: one per dispatched target, as soon as its dispatch is
// stored, and again by a later reconcile for any whose publish failed.
// Repeating one is safe (publishCommand.ts); the set only spares the
// server the repeats.
import { dispatchedCount, isTerminalDeployment, targetIds, turns, type CommandSigner, type DeploymentRecord, type DeploymentSpec, type JsContext, type Logger } from "../../../shared/src/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { publishCommand, startLeaseFor } from "./publishCommand.js";

/**
 * Command publishes awaiting their acknowledgement at once, per process;
 * the rest wait here, where their timeout has not started. The server
 * stores a stream's messages one fsync after another, so a dispatch of
 * thousands sent at once left the last ones waiting past the publish
 * timeout (5 s), and those were sent again (deduplicated, but each one more
 * message and reply while the server was busiest): 1.89 command publishes
 * per target at fan-out 10,000 on a VM whose fdatasync took 0.8 ms, 1.00
 * with this window. It keeps the server's queue as full, so its throughput
 * is the same.
 */
export const COMMANDS_IN_FLIGHT = 256;

export class CommandPublisher {
  /**
   * Commands this process already published: agents by deployment. Every
   * reconcile pass looks up each dispatched target here; a key made of both
   * ids cost a string per target and pass, 6.6 s of the coordinator's 36.7 s
   * of CPU in the bench's rollout to 10,000 agents.
   */
  readonly #published = new Map<string, Set<string>>();
  readonly #turn = turns(COMMANDS_IN_FLIGHT);

  constructor(
    private readonly ctx: Pick<JsContext, "js">,
    private readonly opts: {
      agentLiveMs: number;
      commandSigner?: CommandSigner;
      metrics?: CoordinatorMetrics;
      cancelFenced?: boolean;
      /** Whether the agent takes its commands on its queue (its entry's commandQueue); absent: none does. */
      commandQueue?: (agentId: string) => boolean;
    },
  ) {}

  async publish(spec: DeploymentSpec, agentId: string, log: Logger): Promise<void> {
    const done = await this.#turn();
    let outcome;
    try {
      outcome = await publishCommand(this.ctx, spec, agentId, this.opts.commandSigner, startLeaseFor(this.opts.agentLiveMs), this.opts.cancelFenced === true, this.opts.commandQueue?.(agentId) === true);
    } finally {
      done();
    }
    let agents = this.#published.get(spec.id);
    if (!agents) this.#published.set(spec.id, (agents = new Set()));
    agents.add(agentId);
    this.opts.metrics?.commands.inc({ outcome });
    log.debug({ agentId, outcome }, "command published");
  }

  /**
   * Forgets what this process published for `id`: the sweep, for a
   * deployment that is no longer active. publishPending forgets only a
   * deployment this process saw terminal; one finished by another
   * coordinator (events wake any) was kept, a set of agent ids each, for
   * the life of the process.
   */
  forget(id: string): void {
    this.#published.delete(id);
  }

  /** The deployments whose published commands this process remembers. */
  deployments(): IterableIterator<string> {
    return this.#published.keys();
  }

  /**
   * Every dispatched target's command not published by this process yet;
   * forgets a terminal deployment's. Only commands of dispatched targets
   * are published, so when this process published as many as were ever
   * dispatched, none is missing, and the targets are not looked through:
   * that filter, every pass, took 2.7 s of the coordinator's 18.5 s of CPU
   * in the bench's two rollouts to 10,000 agents.
   */
  async publishPending(record: DeploymentRecord, log: Logger): Promise<void> {
    const published = this.#published.get(record.spec.id);
    const pending = (published?.size ?? 0) >= dispatchedCount(record) ? [] : targetIds(record).filter((agentId) => record.targets[agentId]!.state === "DISPATCHED" && !published?.has(agentId));
    // Publishes are independent; sent together, N round trips take about one.
    await Promise.all(pending.map((agentId) => this.publish(record.spec, agentId, log)));
    if (isTerminalDeployment(record.state)) this.#published.delete(record.spec.id);
  }
}
