// The agent's Prometheus metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class AgentMetrics {
  readonly registry = new Registry();
  readonly applies = new Counter({ name: "deploy_agent_applies_total", help: "Applies run, by outcome", labelNames: ["outcome"], registers: [this.registry] });
  readonly applyDuration = new Histogram({
    name: "deploy_agent_apply_duration_seconds",
    help: "Duration of one apply (download, unpack and hooks, or the deploy executable)",
    labelNames: ["outcome"],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly hookDuration = new Histogram({
    name: "deploy_agent_hook_duration_seconds",
    help: "Duration of each bundle phase (unpack, each hook, switch, rollback)",
    labelNames: ["phase"],
    buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 900],
    registers: [this.registry],
  });
  readonly redeliveries = new Counter({ name: "deploy_agent_redeliveries_total", help: "Commands delivered more than once", registers: [this.registry] });
  readonly journalHits = new Counter({
    name: "deploy_agent_journal_hits_total",
    help: "Commands answered from the journal (re-reported, nothing run)",
    labelNames: ["status"],
    registers: [this.registry],
  });
  readonly declined = new Counter({ name: "deploy_agent_declined_total", help: "Commands declined because the deployment was no longer active or the claim was refused", registers: [this.registry] });
  readonly rejected = new Counter({ name: "deploy_agent_rejected_messages_total", help: "Malformed or foreign commands terminated", registers: [this.registry] });
  readonly linkChecks = new Counter({
    name: "deploy_agent_nats_link_checks_total",
    help: "Checks of the NATS connection after the command pull's idle heartbeats stopped: answered (the server answered a PING) or reconnected (it did not)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly consumersMade = new Counter({
    name: "deploy_agent_command_consumers_made_total",
    help: "Times the agent found its command consumer gone while running (a nats-server restart forgot one kept in memory, or it was deleted) and made it again",
    registers: [this.registry],
  });
  lastHeartbeat = Date.now();
  readonly heartbeatAge: Gauge;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const since = (): number => (Date.now() - this.lastHeartbeat) / 1000;
    this.heartbeatAge = new Gauge({
      name: "deploy_agent_heartbeat_age_seconds",
      help: "Seconds since the last successful heartbeat",
      registers: [this.registry],
      collect() {
        this.set(since());
      },
    });
  }
}
