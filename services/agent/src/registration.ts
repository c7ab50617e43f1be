// The agent's entry in deploy_agents, rewritten every heartbeat. The
// coordinator judges liveness by the server's timestamp of the last write.
import { hostname } from "node:os";
import { AGENT_SCHEMA, encode, type AgentRecord, type JsContext, type Logger } from "../../shared/src/index.js";
import type { AgentConfig } from "./config.js";

export const AGENT_VERSION = "0.1.0";

export class Registration {
  readonly record: AgentRecord;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: Pick<JsContext, "agents">,
    config: AgentConfig,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    this.record = {
      schema: AGENT_SCHEMA,
      id: config.id,
      environment: config.environment,
      apps: Object.keys(config.apps).sort(),
      host: hostname(),
      version: AGENT_VERSION,
      labels: config.labels,
      currentReleases: {},
      startedAt: new Date().toISOString(),
    };
  }

  async start(currentReleases: Record<string, string>): Promise<void> {
    this.record.currentReleases = currentReleases;
    await this.beat();
    this.#timer = setInterval(() => {
      this.beat().catch((err: unknown) => this.log.warn({ err }, "heartbeat failed"));
    }, this.intervalMs);
  }

  /** Called after every heartbeat JetStream acknowledged (metrics). */
  onBeat: () => void = () => undefined;

  async beat(): Promise<void> {
    await this.ctx.agents.put(this.record.id, encode(this.record));
    this.onBeat();
  }

  setCurrentRelease(app: string, deploymentId: string): void {
    this.record.currentReleases[app] = deploymentId;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
