// Coordinator configuration: every key documented, each overridable from the
// environment. Units are in the names.
import { tmpdir } from "node:os";
import { TOKEN_RULE, configFileFrom, errorMessage, isToken, loadConfig, readBindingsFile, readSeedFile, signerFromSeed } from "../../shared/src/index.js";
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_UNPACKED_BYTES } from "../../shared/src/bundle/inspect.js";
import { loadTokens } from "./grpc/auth.js";
import { readNotifySecret } from "./notifier.js";

export interface CoordinatorConfig {
  devMode: boolean;
  nats: { url: string; apiTimeoutMs: number; nkeySeedFile: string; tlsCaFile: string };
  grpc: {
    listen: string;
    tls: { certFile: string; keyFile: string; clientCaFile: string };
    tokens: unknown[];
    tokensFile: string;
  };
  signing: { seedFile: string; seed: string };
  agents: { bindingsFile: string; forgetAfterMs: number };
  streams: {
    replicas: number;
    commandsMaxAgeMs: number;
    eventsMaxAgeMs: number;
    eventsMaxBytes: number;
    eventsMaxMsgsPerSubject: number;
    deploymentsMaxAgeMs: number;
    deploymentsExpiryIntervalMs: number;
  };
  rollout: {
    defaultDeliveryTimeoutMs: number;
    defaultApplyTimeoutMs: number;
    applyTimeoutGraceMs: number;
    agentLiveMs: number;
    sweepIntervalMs: number;
    convergenceOff: string[];
  };
  artifacts: { maxBytes: number; tmpDir: string; maxExpansionRatio: number; maxUnpackedBytes: number; maxFiles: number; keepPerApp: number };
  metrics: { listen: string };
  http: { listen: string; assetsDir: string };
  notify: { url: string; secretFile: string; events: string[]; environments: string[]; apps: string[]; retryMs: number; maxAttempts: number; timeoutMs: number };
  watches: { max: number };
  logLevel: string;
}

const schema = {
  devMode: {
    doc: "Development mode: serve without TLS, tokens or a command signing key and connect to NATS without credentials, on loopback addresses only (every listener must be 127.0.0.0/8, ::1 or localhost). Off (production): TLS, at least one token, a signing key and a NATS nkey are required, or the coordinator refuses to start",
    format: Boolean,
    default: false,
    env: "DEPLOY_DEV_MODE",
  },
  nats: {
    url: { doc: "NATS server URL(s), comma separated", format: String, default: "nats://127.0.0.1:4222", env: "NATS_URL" },
    apiTimeoutMs: {
      doc: "Time limit of one JetStream API call or publish acknowledgement",
      format: "nat",
      default: 5000,
      env: "DEPLOY_NATS_API_TIMEOUT_MS",
    },
    nkeySeedFile: {
      doc: "File holding this coordinator's NATS nkey seed (SU…), when the server requires nkey authentication (deploy/nats/auth)",
      format: String,
      default: "",
      env: "NATS_NKEY_SEED_FILE",
    },
    tlsCaFile: {
      doc: "PEM CA bundle the NATS servers' certificates are checked against; set: the connection uses TLS (scripts/gen-credentials.ts writes ca.pem)",
      format: String,
      default: "",
      env: "NATS_CA_FILE",
    },
  },
  grpc: {
    listen: { doc: "gRPC listen address host:port", format: String, default: "127.0.0.1:50051", env: "DEPLOY_GRPC_LISTEN" },
    tls: {
      certFile: { doc: "PEM certificate (chain) of the gRPC server; with keyFile, gRPC is served over TLS", format: String, default: "", env: "DEPLOY_GRPC_TLS_CERT" },
      keyFile: { doc: "PEM private key of the gRPC server", format: String, default: "", env: "DEPLOY_GRPC_TLS_KEY" },
      clientCaFile: {
        doc: "PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS)",
        format: String,
        default: "",
        env: "DEPLOY_GRPC_TLS_CLIENT_CA",
      },
    },
    tokens: {
      doc: 'Bearer tokens, as SHA-256 hashes only: "name:role:sha256hex" (env: comma separated) or {"name", "role", "sha256"}; role viewer or deployer. A deployer scoped to environments and apps: "name:deployer:sha256hex:staging+qa[:web+api]" ("*": every environment) or "environments": [...], "apps": [...] (it changes nothing elsewhere, reads everything). None: no authentication',
      format: Array,
      default: [] as unknown[],
      env: "DEPLOY_GRPC_TOKENS",
    },
    tokensFile: {
      doc: 'JSON file with more token entries: [{"name", "role", "sha256", "environments", "apps"}] or {"tokens": [...]}',
      format: String,
      default: "",
      env: "DEPLOY_GRPC_TOKENS_FILE",
    },
  },
  signing: {
    seedFile: {
      doc: "File holding the nkey seed (SU…) commands are signed with; agents pin its public key in trustedSigners. Unset (and no seed): commands go out unsigned (development only)",
      format: String,
      default: "",
      env: "DEPLOY_SIGNING_SEED_FILE",
    },
    seed: { doc: "The signing seed itself, instead of seedFile (e.g. from a secret store)", format: String, default: "", env: "DEPLOY_SIGNING_SEED", sensitive: true },
  },
  agents: {
    bindingsFile: {
      doc: "bindings.json (written by `npm run gen-credentials`): each agent id's environment and apps. An agent entry claiming an environment or app its binding does not give is refused: never a target, not listed. Read at start and again on SIGHUP. Required in production mode; unset in development mode: every entry is taken",
      format: String,
      default: "",
      env: "DEPLOY_AGENT_BINDINGS_FILE",
    },
    forgetAfterMs: {
      doc: "An agent silent this long (no heartbeat: a VM gone for good) is deregistered, as DeregisterAgent does: no longer listed, deployed to or converged; it registers again if it starts again. A cordoned agent is kept. 0: never; otherwise at least rollout.agentLiveMs",
      format: "nat",
      default: 7 * 24 * 3600 * 1000,
      env: "DEPLOY_AGENT_FORGET_AFTER_MS",
    },
  },
  streams: {
    replicas: {
      doc: "Replicas of the streams and buckets the coordinator creates (3 on a cluster)",
      format: "nat",
      default: 1,
      env: "DEPLOY_STREAM_REPLICAS",
    },
    commandsMaxAgeMs: {
      doc: "How long a command is kept in DEPLOY_COMMANDS: an agent away longer misses it; keep the agents' journalKeepMs longer (their journal answers a command delivered again)",
      format: "nat",
      default: 7 * 24 * 3600 * 1000,
      env: "DEPLOY_COMMANDS_MAX_AGE_MS",
    },
    eventsMaxAgeMs: {
      doc: "How long an event is kept in DEPLOY_EVENTS, the audit log (0: for ever). A deployment stays readable from its KV projection after its events expire; WatchDeployment replays only what is left",
      format: "nat",
      default: 90 * 24 * 3600 * 1000,
      env: "DEPLOY_EVENTS_MAX_AGE_MS",
    },
    deploymentsMaxAgeMs: {
      doc: "How long a finished deployment's records are kept in deploy_deployments (projection, shards, list index entry, request mapping) after it finished; then they are purged, unless a release of its app and environment names it or it converges agents to the desired release (0: kept for ever). Never less than streams.eventsMaxAgeMs, and never while events are kept for ever. Its request_id is remembered as long",
      format: "nat",
      default: 365 * 24 * 3600 * 1000,
      env: "DEPLOY_DEPLOYMENTS_MAX_AGE_MS",
    },
    deploymentsExpiryIntervalMs: {
      doc: "How often each coordinator purges the expired deployments it sweeps (streams.deploymentsMaxAgeMs)",
      format: "nat",
      default: 3600 * 1000,
      env: "DEPLOY_DEPLOYMENTS_EXPIRY_INTERVAL_MS",
    },
    eventsMaxBytes: {
      doc: "Bytes DEPLOY_EVENTS may hold per replica (-1: no limit). Past it the server refuses new events (discard new) rather than drop acknowledged ones: size it for eventsMaxAgeMs of your traffic",
      format: "int",
      default: -1,
      env: "DEPLOY_EVENTS_MAX_BYTES",
    },
    eventsMaxMsgsPerSubject: {
      doc: "Events one source may write about one deployment (deploy.evt.<deployment>.<source>); past it the server refuses that source's further events there, so one agent cannot fill the stream. A well-behaved agent writes at most its maxOutputLines (default 200) + 4",
      format: "nat",
      default: 100_000,
      env: "DEPLOY_EVENTS_MAX_MSGS_PER_SUBJECT",
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
    convergenceOff: {
      doc: "Environments in which convergence is off (env: comma separated): an agent that registers or comes back there on another release than the desired one is shown outdated and left alone, and a deployment with offline targets there ends FAILED",
      format: Array,
      default: [] as string[],
      env: "DEPLOY_CONVERGENCE_OFF",
    },
  },
  artifacts: {
    maxBytes: { doc: "Largest artifact UploadArtifact accepts, in bytes", format: "nat", default: 1024 * 1024 * 1024, env: "DEPLOY_ARTIFACT_MAX_BYTES" },
    tmpDir: { doc: "Where an upload is spooled while it is hashed and checked", format: String, default: tmpdir(), env: "DEPLOY_ARTIFACT_TMP_DIR" },
    maxExpansionRatio: {
      doc: "A bundle whose unpacked size exceeds this multiple of its compressed size is refused",
      format: "nat",
      default: DEFAULT_MAX_EXPANSION_RATIO,
      env: "DEPLOY_ARTIFACT_MAX_EXPANSION_RATIO",
    },
    maxUnpackedBytes: {
      doc: "A bundle whose files add up to more than this many bytes is refused at upload (keep it at or below the agents' maxUnpackedBytes, or agents refuse what was accepted)",
      format: "nat",
      default: DEFAULT_MAX_UNPACKED_BYTES,
      env: "DEPLOY_ARTIFACT_MAX_UNPACKED_BYTES",
    },
    maxFiles: {
      doc: "A bundle with more entries than this (files, directories and links) is refused at upload (keep it at or below the agents' maxFiles)",
      format: "nat",
      default: DEFAULT_MAX_ENTRIES,
      env: "DEPLOY_ARTIFACT_MAX_FILES",
    },
    keepPerApp: {
      doc: "After each new upload of an app, its newest this many artifacts are kept, and every artifact one of its releases (desired or in the history rollbacks use) or active deployments names; the others are deleted. 0: keep every artifact",
      format: "nat",
      default: 20,
      env: "DEPLOY_ARTIFACT_KEEP",
    },
  },
  metrics: {
    listen: { doc: "host:port serving Prometheus metrics on GET /metrics; empty: off", format: String, default: "", env: "DEPLOY_METRICS_LISTEN" },
  },
  http: {
    listen: {
      doc: "host:port of the web dashboard and its read-only JSON/Server-Sent Events API (services/coordinator/src/http); empty: off. With grpc.tokens set it asks for a token (viewer reads, deployer may cancel); serve it behind TLS",
      format: String,
      default: "",
      env: "DEPLOY_HTTP_LISTEN",
    },
    assetsDir: {
      doc: "Directory of the built dashboard (npm run build writes dist/dashboard); empty: dist/dashboard of this package",
      format: String,
      default: "",
      env: "DEPLOY_HTTP_ASSETS_DIR",
    },
  },
  notify: {
    url: {
      doc: "Webhook the coordinators POST deployment notifications to (JSON with a `text` line Slack and Mattermost incoming webhooks show as it is); empty: off. https only in production mode. Delivered at least once (docs/operations.md#notifications)",
      format: String,
      default: "",
      env: "DEPLOY_NOTIFY_URL",
    },
    secretFile: {
      doc: "File holding the secret each notification is signed with: header Deploy-Signature: sha256=<HMAC-SHA256 of the body, hex>; empty: unsigned",
      format: String,
      default: "",
      env: "DEPLOY_NOTIFY_SECRET_FILE",
    },
    events: {
      doc: "Event types notified (env: comma separated): deployment.finished (every end: SUCCEEDED, FAILED, CANCELLED), deployment.halted (dispatching stopped after failures), deployment.canary_done (waiting for a promote), environment.frozen and environment.unfrozen (FreezeEnvironment, UnfreezeEnvironment), environment.policy_changed (SetEnvironmentPolicy: set or cleared), deployment.created (a deployment started, convergences included), deployment.paused, deployment.cancel_requested",
      format: Array,
      default: ["deployment.finished", "deployment.halted", "deployment.canary_done", "environment.frozen", "environment.unfrozen", "environment.policy_changed"] as string[],
      env: "DEPLOY_NOTIFY_EVENTS",
    },
    environments: {
      doc: "Only deployments to these environments are notified (env: comma separated); empty: every environment",
      format: Array,
      default: [] as string[],
      env: "DEPLOY_NOTIFY_ENVIRONMENTS",
    },
    apps: {
      doc: "Only deployments of these apps are notified (env: comma separated); empty: every app",
      format: Array,
      default: [] as string[],
      env: "DEPLOY_NOTIFY_APPS",
    },
    retryMs: { doc: "Wait before the first retry of a notification the webhook did not take (no answer, or not 2xx); doubled each time, up to 5 minutes", format: "nat", default: 2000, env: "DEPLOY_NOTIFY_RETRY_MS" },
    maxAttempts: {
      doc: "Attempts per notification before it is given up (logged as an error, deploy_notifications_total{outcome=\"given_up\"}); 20 at the defaults is about an hour",
      format: "nat",
      default: 20,
      env: "DEPLOY_NOTIFY_MAX_ATTEMPTS",
    },
    timeoutMs: { doc: "Time limit of one POST", format: "nat", default: 10_000, env: "DEPLOY_NOTIFY_TIMEOUT_MS" },
  },
  watches: {
    max: {
      doc: "Watches (gRPC WatchDeployment and the dashboard's event streams) this coordinator follows at once, each a consumer on DEPLOY_EVENTS; one more is refused as UNAVAILABLE (HTTP 503) until one ends. 0: no limit",
      format: "nat",
      default: 1000,
      env: "DEPLOY_MAX_WATCHES",
    },
  },
  logLevel: { doc: "pino log level", format: ["fatal", "error", "warn", "info", "debug", "trace", "silent"], default: "info", env: "LOG_LEVEL" },
};

/** Overrides merge key by key (convict), so a nested group may be given in part. */
export type CoordinatorConfigOverrides = { [K in keyof CoordinatorConfig]?: CoordinatorConfig[K] extends object ? Partial<CoordinatorConfig[K]> : CoordinatorConfig[K] };

/** Event types a notification may be about (notify.events). */
export const NOTIFY_EVENT_TYPES = ["deployment.created", "deployment.finished", "deployment.halted", "deployment.canary_done", "deployment.paused", "deployment.cancel_requested", "environment.frozen", "environment.unfrozen", "environment.policy_changed"] as const;

function checkNotify(cfg: CoordinatorConfig): void {
  const n = cfg.notify;
  n.events = n.events.map((e) => String(e).trim()).filter((e) => e !== "");
  for (const e of n.events) {
    if (!(NOTIFY_EVENT_TYPES as readonly string[]).includes(e)) throw new Error(`invalid configuration: notify.events: "${e.slice(0, 80)}" is not one of ${NOTIFY_EVENT_TYPES.join(", ")}`);
  }
  n.environments = n.environments.map((e) => String(e).trim()).filter((e) => e !== "");
  for (const e of n.environments) {
    if (!isToken(e)) throw new Error(`invalid configuration: notify.environments: "${e.slice(0, 80)}" is not an environment name (${TOKEN_RULE})`);
  }
  n.apps = n.apps.map((a) => String(a).trim()).filter((a) => a !== "");
  for (const a of n.apps) {
    if (!isToken(a)) throw new Error(`invalid configuration: notify.apps: "${a.slice(0, 80)}" is not an app name (${TOKEN_RULE})`);
  }
  if (!n.url) return;
  let url: URL;
  try {
    url = new URL(n.url);
  } catch {
    throw new Error("invalid configuration: notify.url: not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`invalid configuration: notify.url: ${url.protocol} is not http or https`);
  // A notification names the fleet's apps, versions and who deployed: not in clear text over the network.
  if (!cfg.devMode && url.protocol !== "https:") throw new Error("invalid configuration: notify.url: must be https in production mode");
  if (n.events.length === 0) throw new Error("invalid configuration: notify.events: at least one event type with notify.url set");
  if (n.maxAttempts < 1) throw new Error("invalid configuration: notify.maxAttempts: must be at least 1");
  if (n.retryMs < 100) throw new Error("invalid configuration: notify.retryMs: must be at least 100");
  if (n.timeoutMs < 100) throw new Error("invalid configuration: notify.timeoutMs: must be at least 100");
  if (n.secretFile) {
    try {
      readNotifySecret(n.secretFile);
    } catch (err) {
      throw new Error(`invalid configuration: ${errorMessage(err)}`);
    }
  }
}

/** host:port whose host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackListen(hostPort: string): boolean {
  const host = hostPort.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

export function loadCoordinatorConfig(argv: string[] = process.argv.slice(2), overrides?: CoordinatorConfigOverrides): CoordinatorConfig {
  const cfg = loadConfig<CoordinatorConfig>(schema, configFileFrom(argv, "DEPLOY_COORDINATOR_CONFIG"), overrides as Partial<CoordinatorConfig> | undefined);
  if (!/^[^:]+:\d+$/.test(cfg.grpc.listen) && !/^\[.*\]:\d+$/.test(cfg.grpc.listen)) {
    throw new Error(`invalid configuration: grpc.listen: "${cfg.grpc.listen}" is not host:port`);
  }
  if (cfg.http.listen && !/^[^:]+:\d+$/.test(cfg.http.listen) && !/^\[.*\]:\d+$/.test(cfg.http.listen)) {
    throw new Error(`invalid configuration: http.listen: "${cfg.http.listen}" is not host:port`);
  }
  if (cfg.rollout.agentLiveMs < 1000) throw new Error("invalid configuration: rollout.agentLiveMs: must be at least 1000");
  if (cfg.rollout.sweepIntervalMs < 50) throw new Error("invalid configuration: rollout.sweepIntervalMs: must be at least 50");
  if (cfg.agents.forgetAfterMs !== 0 && cfg.agents.forgetAfterMs < cfg.rollout.agentLiveMs) {
    throw new Error("invalid configuration: agents.forgetAfterMs: must be 0 (never) or at least rollout.agentLiveMs");
  }
  if (cfg.streams.deploymentsExpiryIntervalMs < 100) throw new Error("invalid configuration: streams.deploymentsExpiryIntervalMs: must be at least 100");
  cfg.rollout.convergenceOff = cfg.rollout.convergenceOff.map((e) => String(e).trim()).filter((e) => e !== "");
  for (const e of cfg.rollout.convergenceOff) {
    if (!isToken(e)) throw new Error(`invalid configuration: rollout.convergenceOff: "${e.slice(0, 80)}" is not an environment name (${TOKEN_RULE})`);
  }
  checkNotify(cfg);
  // Checked here so that a bad token list, key or seed stops the process at
  // start (exit 2) rather than at the first call; messages never hold secrets.
  try {
    const tokens = loadTokens(cfg.grpc.tokens, cfg.grpc.tokensFile);
    if (cfg.devMode) {
      for (const [key, addr] of [["grpc.listen", cfg.grpc.listen], ["http.listen", cfg.http.listen], ["metrics.listen", cfg.metrics.listen]] as const) {
        if (addr && !isLoopbackListen(addr)) throw new Error(`${key}: "${addr}" is not a loopback address; development mode (devMode, DEPLOY_DEV_MODE) listens on 127.0.0.0/8, ::1 or localhost only`);
      }
    } else {
      const missing = [
        ...(!cfg.grpc.tls.certFile || !cfg.grpc.tls.keyFile ? ["grpc.tls.certFile and grpc.tls.keyFile (DEPLOY_GRPC_TLS_CERT, DEPLOY_GRPC_TLS_KEY)"] : []),
        ...(tokens.length === 0 ? ["at least one token (grpc.tokens or grpc.tokensFile: DEPLOY_GRPC_TOKENS, DEPLOY_GRPC_TOKENS_FILE)"] : []),
        ...(!cfg.signing.seed && !cfg.signing.seedFile ? ["a command signing key (signing.seedFile: DEPLOY_SIGNING_SEED_FILE)"] : []),
        ...(!cfg.nats.nkeySeedFile ? ["a NATS nkey (nats.nkeySeedFile: NATS_NKEY_SEED_FILE)"] : []),
        ...(!cfg.agents.bindingsFile ? ["agent bindings (agents.bindingsFile: DEPLOY_AGENT_BINDINGS_FILE)"] : []),
      ];
      if (missing.length > 0) {
        throw new Error(
          `production mode needs ${missing.join("; ")}. Generate them with \`npm run gen-credentials\` (docs/production.md), ` +
            "or start in development mode (devMode, DEPLOY_DEV_MODE=1: loopback only, no TLS, tokens or signing)",
        );
      }
    }
    if (cfg.signing.seed && cfg.signing.seedFile) throw new Error("signing: set seed or seedFile, not both");
    if (cfg.signing.seed || cfg.signing.seedFile) signerFromSeed(cfg.signing.seed || readSeedFile(cfg.signing.seedFile));
    if (cfg.nats.nkeySeedFile) readSeedFile(cfg.nats.nkeySeedFile);
    if (cfg.agents.bindingsFile) {
      try {
        readBindingsFile(cfg.agents.bindingsFile);
      } catch (err) {
        throw new Error(`agents.bindingsFile: ${errorMessage(err)}`);
      }
    }
  } catch (err) {
    throw new Error(`invalid configuration: ${errorMessage(err)}`);
  }
  return cfg;
}
