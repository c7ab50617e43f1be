// Coordinator configuration: every key documented, each overridable from the
// environment. Units are in the names.
import { tmpdir } from "node:os";
import { configFileFrom, loadConfig } from "../../shared/src/index.js";

export interface CoordinatorConfig {
  nats: { url: string; apiTimeoutMs: number };
  grpc: { listen: string };
  streams: { replicas: number; commandsMaxAgeMs: number };
  rollout: {
    defaultDeliveryTimeoutMs: number;
    defaultApplyTimeoutMs: number;
    applyTimeoutGraceMs: number;
    agentLiveMs: number;
    sweepIntervalMs: number;
  };
  artifacts: { maxBytes: number; tmpDir: string; maxExpansionRatio: number };
  logLevel: string;
}

const schema = {
  nats: {
    url: { doc: "NATS server URL(s), comma separated", format: String, default: "nats://127.0.0.1:4222", env: "NATS_URL" },
    apiTimeoutMs: {
      doc: "Time limit of one JetStream API call or publish acknowledgement",
      format: "nat",
      default: 5000,
      env: "DEPLOY_NATS_API_TIMEOUT_MS",
    },
  },
  grpc: {
    listen: { doc: "gRPC listen address host:port", format: String, default: "127.0.0.1:50051", env: "DEPLOY_GRPC_LISTEN" },
  },
  streams: {
    replicas: {
      doc: "Replicas of the streams and buckets the coordinator creates (3 on a cluster)",
      format: "nat",
      default: 1,
      env: "DEPLOY_STREAM_REPLICAS",
    },
    commandsMaxAgeMs: {
      doc: "How long a command is kept in DEPLOY_COMMANDS; a re-publish is refused for as long as it is kept",
      format: "nat",
      default: 7 * 24 * 3600 * 1000,
      env: "DEPLOY_COMMANDS_MAX_AGE_MS",
    },
  },
  rollout: {
    defaultDeliveryTimeoutMs: {
      doc: "Default strategy.delivery_timeout: how long a dispatched target may wait for its agent to start",
      format: "nat",
      default: 60_000,
      env: "DEPLOY_DEFAULT_DELIVERY_TIMEOUT_MS",
    },
    defaultApplyTimeoutMs: {
      doc: "Default strategy.apply_timeout: how long one apply may run",
      format: "nat",
      default: 600_000,
      env: "DEPLOY_DEFAULT_APPLY_TIMEOUT_MS",
    },
    applyTimeoutGraceMs: {
      doc: "Extra time past apply_timeout for the agent's own kill-and-report before the coordinator marks a target TIMED_OUT",
      format: "nat",
      default: 15_000,
      env: "DEPLOY_APPLY_TIMEOUT_GRACE_MS",
    },
    agentLiveMs: {
      doc: "An agent whose last heartbeat is older than this is not live: not targeted, and its applying target times out",
      format: "nat",
      default: 15_000,
      env: "DEPLOY_AGENT_LIVE_MS",
    },
    sweepIntervalMs: {
      doc: "How often every active deployment is re-examined for timeouts, besides being woken by its events",
      format: "nat",
      default: 1000,
      env: "DEPLOY_SWEEP_INTERVAL_MS",
    },
  },
  artifacts: {
    maxBytes: { doc: "Largest artifact UploadArtifact accepts, in bytes", format: "nat", default: 1024 * 1024 * 1024, env: "DEPLOY_ARTIFACT_MAX_BYTES" },
    tmpDir: { doc: "Where an upload is spooled while it is hashed and checked", format: String, default: tmpdir(), env: "DEPLOY_ARTIFACT_TMP_DIR" },
    maxExpansionRatio: {
      doc: "A bundle whose unpacked size exceeds this multiple of its compressed size is refused",
      format: "nat",
      default: 50,
      env: "DEPLOY_ARTIFACT_MAX_EXPANSION_RATIO",
    },
  },
  logLevel: { doc: "pino log level", format: ["fatal", "error", "warn", "info", "debug", "trace", "silent"], default: "info", env: "LOG_LEVEL" },
};

export function loadCoordinatorConfig(argv: string[] = process.argv.slice(2), overrides?: Partial<CoordinatorConfig>): CoordinatorConfig {
  const cfg = loadConfig<CoordinatorConfig>(schema, configFileFrom(argv, "DEPLOY_COORDINATOR_CONFIG"), overrides);
  if (!/^[^:]+:\d+$/.test(cfg.grpc.listen) && !/^\[.*\]:\d+$/.test(cfg.grpc.listen)) {
    throw new Error(`invalid configuration: grpc.listen: "${cfg.grpc.listen}" is not host:port`);
  }
  if (cfg.rollout.agentLiveMs < 1000) throw new Error("invalid configuration: rollout.agentLiveMs: must be at least 1000");
  if (cfg.rollout.sweepIntervalMs < 50) throw new Error("invalid configuration: rollout.sweepIntervalMs: must be at least 50");
  return cfg;
}
