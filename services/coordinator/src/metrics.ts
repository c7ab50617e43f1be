// The coordinator's Prometheus metrics. Counters count what this coordinator
// observed or did; with several coordinators, sum them (each transition is
// observed by the coordinator whose reconcile folded it, possibly by more
// than one: use them for rates and alerts, and the event stream for audits).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly deploymentsActive = new Gauge({ name: "deploy_deployments_active", help: "Deployments holding an (app, environment) lock at the last sweep", registers: [this.registry] });
  readonly deploymentsHeld = new Gauge({
    name: "deploy_deployments_held",
    help: "Deployments this coordinator keeps in memory (a fold, or the commands it published) at the last sweep: back to at most the active ones a sweep after they finish",
    registers: [this.registry],
  });
  readonly deploymentsOwned = new Gauge({ name: "deploy_deployments_owned", help: "Active deployments this coordinator sweeps (its share among the live coordinators)", registers: [this.registry] });
  readonly deploymentsFinished = new Counter({ name: "deploy_deployments_finished_total", help: "Deployments seen reaching a terminal state", labelNames: ["state"], registers: [this.registry] });
  readonly targetsFinished = new Counter({ name: "deploy_targets_finished_total", help: "Targets seen reaching a terminal state", labelNames: ["state"], registers: [this.registry] });
  readonly targetDuration = new Histogram({
    name: "deploy_target_duration_seconds",
    help: "From dispatch to the target's terminal state",
    labelNames: ["state"],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly decisions = new Counter({ name: "deploy_decisions_total", help: "Decision events appended", labelNames: ["type"], registers: [this.registry] });
  readonly catchUps = new Counter({
    name: "deploy_catchups_total",
    help: "Reconciles brought up to date, by where the events came from: the ones delivered to this coordinator, or a read of the stream",
    labelNames: ["from"],
    registers: [this.registry],
  });
  readonly eventsUnreadable = new Counter({
    name: "deploy_events_unreadable_total",
    help: "Messages in a deployment's events that are no readable event (invalid JSON, another schema, an unknown type): skipped, with the deployment's sequences moved past them",
    registers: [this.registry],
  });
  readonly casConflicts = new Counter({ name: "deploy_cas_conflicts_total", help: "Decisions refused because another coordinator decided first", registers: [this.registry] });
  readonly commands = new Counter({
    name: "deploy_commands_published_total",
    help: "Command publishes by outcome (duplicate and already-stored are re-publishes refused by the server)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly grpcCalls = new Counter({ name: "deploy_grpc_calls_total", help: "gRPC calls by method and status code", labelNames: ["method", "code"], registers: [this.registry] });
  readonly grpcDuration = new Histogram({
    name: "deploy_grpc_duration_seconds",
    help: "Unary gRPC call duration",
    labelNames: ["method"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly agentEntriesRefused = new Counter({
    name: "deploy_agent_entries_refused_total",
    help: "Agent registry writes (heartbeats) refused because they claim an environment or app the agent's binding does not give",
    registers: [this.registry],
  });
  readonly agentsHeardAfterSilence = new Counter({
    name: "deploy_agents_heard_after_silence_total",
    help: "Idle heartbeats heard from an agent silent longer than agentLiveMs (shown offline meanwhile): an idle heartbeat interval too long for agentLiveMs, or links to NATS that were down",
    registers: [this.registry],
  });
  readonly notifications = new Counter({
    name: "deploy_notifications_total",
    help: "Webhook notifications (notify.url) by outcome: delivered (2xx), retried (not taken; tried again later), given_up (after notify.maxAttempts)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly deploymentsExpired = new Counter({
    name: "deploy_deployments_expired_total",
    help: "Finished deployments whose records this coordinator purged from deploy_deployments (streams.deploymentsMaxAgeMs)",
    registers: [this.registry],
  });
  /** Read at each scrape: how many agents' entries are refused now (set by the coordinator to its registry's count). */
  refusedAgents: () => number = () => 0;
  /** Read at each scrape: how many agents are cordoned now (set by the coordinator). */
  cordonedAgents: () => number = () => 0;
  /** Read at each scrape: how many environments are frozen now (set by the coordinator). */
  frozenEnvironments: () => number = () => 0;
  /** Read at each scrape: the watches followed now and those refused since the start (set by the coordinator to its WatchSlots). */
  watches: () => { open: number; refused: number } = () => ({ open: 0, refused: 0 });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const refused = (): number => this.refusedAgents();
    new Gauge({
      name: "deploy_agents_refused",
      help: "Agents whose registry entry is refused now for claiming more than their binding (not listed, never targeted)",
      registers: [this.registry],
      collect() {
        this.set(refused());
      },
    });
    const cordoned = (): number => this.cordonedAgents();
    new Gauge({
      name: "deploy_agents_cordoned",
      help: "Agents cordoned now (CordonAgent): they take no new deployment and are not converged",
      registers: [this.registry],
      collect() {
        this.set(cordoned());
      },
    });
    const frozen = (): number => this.frozenEnvironments();
    new Gauge({
      name: "deploy_environments_frozen",
      help: "Environments frozen now (FreezeEnvironment): new deployments to them are refused unless they override the freeze",
      registers: [this.registry],
      collect() {
        this.set(frozen());
      },
    });
    const watches = (): { open: number; refused: number } => this.watches();
    new Gauge({
      name: "deploy_watches_open",
      help: "Watches this coordinator follows now (gRPC WatchDeployment and the dashboard's event streams), each a consumer on DEPLOY_EVENTS; at most watches.max",
      registers: [this.registry],
      collect() {
        this.set(watches().open);
      },
    });
    new Counter({
      name: "deploy_watches_refused_total",
      help: "Watches refused because watches.max were open (UNAVAILABLE over gRPC, 503 from the dashboard)",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(watches().refused);
      },
    });
  }
}
