// Publishing commands: one per dispatched target, as soon as its dispatch is
// stored, and again by a later reconcile for any whose publish failed.
// Repeating one is safe (publishCommand.ts); the set only spares the
// server the repeats.
import { isTerminalDeployment, type CommandSigner, type DeploymentRecord, type DeploymentSpec, type JsContext, type Logger } from "../../../shared/src/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { publishCommand, startLeaseFor } from "./publishCommand.js";

export class CommandPublisher {
  /** Commands this process already published, "<deployment>.<agent>". */
  readonly #published = new Set<string>();

  constructor(
    private readonly ctx: Pick<JsContext, "js">,
    private readonly opts: { agentLiveMs: number; commandSigner?: CommandSigner; metrics?: CoordinatorMetrics },
  ) {}

  async publish(spec: DeploymentSpec, agentId: string, log: Logger): Promise<void> {
    const outcome = await publishCommand(this.ctx, spec, agentId, this.opts.commandSigner, startLeaseFor(this.opts.agentLiveMs));
    this.#published.add(`${spec.id}.${agentId}`);
    this.opts.metrics?.commands.inc({ outcome });
    log.debug({ agentId, outcome }, "command published");
  }

  /** Every dispatched target's command not published by this process yet; forgets a terminal deployment's. */
  async publishPending(record: DeploymentRecord, log: Logger): Promise<void> {
    const pending = Object.entries(record.targets)
      .filter(([agentId, t]) => t.state === "DISPATCHED" && !this.#published.has(`${record.spec.id}.${agentId}`))
      .map(([agentId]) => agentId);
    // Publishes are independent; sent together, N round trips take about one.
    await Promise.all(pending.map((agentId) => this.publish(record.spec, agentId, log)));
    if (isTerminalDeployment(record.state)) {
      for (const agentId of record.spec.targets) this.#published.delete(`${record.spec.id}.${agentId}`);
    }
  }
}
