// Agent configuration: a file from --config or DEPLOY_AGENT_CONFIG, every key
// also from the environment; invalid values stop the agent at start with the
// key named.
import { hostname } from "node:os";
import { isAbsolute } from "node:path";
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES } from "../../shared/src/bundle/limits.js";
import { resolveRunAs, type RunAs } from "./runAs.js";
import { MAP_KEY, MAP_KEY_RULE, TOKEN_RULE, agentIdProblem, configFileFrom, errorMessage, isSignerPublicKey, isToken, loadConfig, readSeedFile } from "../../shared/src/index.js";

export interface AppConfig {
  /**
   * Absolute path of the executable that applies a changeset without a
   * bundle. Optional: an app deployed only as bundles needs none.
   */
  deploy?: string;
  /**
   * The account the app's hooks and deploy executable run as (a name or
   * uid), and which owns its releases; default: the agent's own.
   */
  user?: string;
  /** Its group (a name or gid); default the user's primary group. Only with user. */
  group?: string;
  /**
   * Environment variables the app's hooks and deploy executable get besides
   * PATH, HOME, LANG and the DEPLOY_* ones (NODE_ENV, a proxy); a name given
   * here wins over the agent's PATH, HOME and LANG, never over DEPLOY_*.
   */
  env?: Record<string, string>;
  /** user and group resolved when the config is checked (not a key of its own). */
  runAs?: RunAs;
}

/** shutdownWayBackMs' default (the systemd unit's TimeoutStopSec covers it: test/compose.test.ts). */
export const DEFAULT_SHUTDOWN_WAY_BACK_MS = 10_000;

export interface AgentConfig {
  id: string;
  environment: string;
  apps: Record<string, AppConfig>;
  labels: Record<string, string>;
  nats: { url: string; apiTimeoutMs: number; nkeySeedFile: string; tlsCaFile: string; inboxPrefix: string };
  /** Public keys ("U…") whose signatures on commands are accepted; empty: unsigned development mode. */
  devMode: boolean;
  trustedSigners: string[];
  stateDir: string;
  root: string;
  maxExpansionRatio: number;
  maxUnpackedBytes: number;
  maxFiles: number;
  heartbeatIntervalMs: number;
  /** 0: heartbeatIntervalMs (the default). */
  idleHeartbeatIntervalMs: number;
  ackWaitMs: number;
  /** How long the journal keeps a finished, reported deployment (journal.ts compaction); 0: for ever. */
  journalKeepMs: number;
  /** While an apply runs: how often the agent looks whether its deployment's cancel asked to kill it (kill_running). */
  killLookMs: number;
  /** Where nats-server keeps the state of a command consumer the agent makes (an existing consumer keeps its own). */
  commandConsumerStorage: "memory" | "file";
  maxOutputLines: number;
  maxLineLength: number;
  shutdownGraceMs: number;
  /** After the shutdown grace killed an install: how long its way back to the previous release (that release's start hook) may still take. */
  shutdownWayBackMs: number;
  metricsListen: string;
  logLevel: string;
}

const defaultId = hostname().split(".")[0]!.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64);

const schema = {
  id: { doc: `Agent id, ${TOKEN_RULE}; default the host name`, format: String, default: defaultId, env: "DEPLOY_AGENT_ID" },
  environment: { doc: "Environment this VM belongs to (a label targets are chosen by)", format: String, default: "", env: "DEPLOY_ENVIRONMENT" },
  apps: {
    doc: 'Apps this VM runs: {"<app>": {"deploy": "<absolute path of an executable>", "user": "<account its hooks and deploy executable run as>", "env": {"NAME": "value"}}}',
    format: Object,
    default: {} as Record<string, AppConfig>,
    env: "DEPLOY_AGENT_APPS",
  },
  labels: { doc: "Labels (JSON object, e.g. {\"role\":\"web\",\"zone\":\"a\"}) shown in ListAgents and matched by a deployment's selector", format: Object, default: {} as Record<string, string>, env: "DEPLOY_AGENT_LABELS" },
  nats: {
    url: { doc: "NATS server URL(s), comma separated", format: String, default: "nats://127.0.0.1:4222", env: "NATS_URL" },
    apiTimeoutMs: { doc: "Time limit of one JetStream call", format: "nat", default: 5000, env: "DEPLOY_NATS_API_TIMEOUT_MS" },
    nkeySeedFile: {
      doc: "File holding this agent's NATS nkey seed (SU…), when the server requires nkey authentication (scripts/gen-credentials.ts)",
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
    inboxPrefix: {
      doc: "Prefix of the agent's reply subjects; default _INBOX_<id>, the prefix its generated NATS permissions allow",
      format: String,
      default: "",
      env: "NATS_INBOX_PREFIX",
    },
  },
  devMode: {
    doc: "Development mode: accept unsigned commands and connect to NATS without credentials. Off (production): trustedSigners and nats.nkeySeedFile are required, or the agent refuses to start",
    format: Boolean,
    default: false,
    env: "DEPLOY_DEV_MODE",
  },
  trustedSigners: {
    doc: "Public nkeys (U…) of the coordinators' command signing keys (env: comma separated). Set: unsigned or otherwise signed commands are refused. Empty: commands are not checked (development only)",
    format: Array,
    default: [] as string[],
    env: "DEPLOY_AGENT_TRUSTED_SIGNERS",
  },
  stateDir: { doc: "Directory of the agent's durable journal", format: String, default: "/var/lib/deploy-agent", env: "DEPLOY_AGENT_STATE_DIR" },
  root: {
    doc: "Where releases live: <root>/<app>/releases/<release> and the <root>/<app>/current link",
    format: String,
    default: "/srv/deploy",
    env: "DEPLOY_AGENT_ROOT",
  },
  maxExpansionRatio: {
    doc: "A bundle whose unpacked size exceeds this multiple of its compressed size is refused before anything runs",
    format: "nat",
    default: 50,
    env: "DEPLOY_AGENT_MAX_EXPANSION_RATIO",
  },
  maxUnpackedBytes: {
    doc: "A bundle whose files add up to more than this many bytes is refused while unpacking: the unpack stops at the cap, the partial release is removed, nothing runs",
    format: "nat",
    default: DEFAULT_MAX_UNPACKED_BYTES,
    env: "DEPLOY_AGENT_MAX_UNPACKED_BYTES",
  },
  maxFiles: {
    doc: "A bundle with more entries than this (files, directories and links) is refused while unpacking, the same way",
    format: "nat",
    default: DEFAULT_MAX_ENTRIES,
    env: "DEPLOY_AGENT_MAX_FILES",
  },
  heartbeatIntervalMs: {
    doc: "How often the agent heartbeats while it applies (a rewrite of its registry entry: the start lease's evidence; the heartbeat after an apply writes its new release), and when idle unless idleHeartbeatIntervalMs is set; keep it well under the coordinator's agentLiveMs (15 s)",
    format: "nat",
    default: 5000,
    env: "DEPLOY_AGENT_HEARTBEAT_MS",
  },
  idleHeartbeatIntervalMs: {
    doc: "How often the agent heartbeats when idle (a core NATS message); 0: heartbeatIntervalMs. At most half the coordinator's agentLiveMs; for large fleets see docs/production.md",
    format: "nat",
    default: 0,
    env: "DEPLOY_AGENT_IDLE_HEARTBEAT_MS",
  },
  ackWaitMs: {
    doc: "ack_wait of the agent's consumer; while a command is handled, in-progress acks go out every ack_wait less a margin for a late event loop (half of it up to 20 s, 10 s up to 30 s, a third above: every 20 s at the default), the first counted from the command's store",
    format: "nat",
    default: 30_000,
    env: "DEPLOY_AGENT_ACK_WAIT_MS",
  },
  journalKeepMs: {
    doc: "How long the agent's journal keeps a deployment it finished and reported (counted from its start), so a command delivered again is answered from it; longer ones are dropped at the agent's start and as the journal grows, except what the agent still needs (each app's last success). Keep it longer than the coordinator's streams.commandsMaxAgeMs (7 days by default). 0: kept for ever",
    format: "nat",
    default: 30 * 24 * 3600 * 1000,
    env: "DEPLOY_AGENT_JOURNAL_KEEP_MS",
  },
  killLookMs: {
    doc: "While an apply runs, how often the agent looks at its deployment's last coordinator event (one direct get) for a cancel with kill_running, which kills the apply: the backstop, as the coordinator that stores the cancel tells the agents to look at once; the first look comes this long after the start, so a shorter apply makes none",
    format: "nat",
    // 5 s before the kill notice: 10,000 agents applying looked 2,000 times a second.
    default: 30_000,
    env: "DEPLOY_AGENT_KILL_LOOK_MS",
  },
  commandConsumerStorage: {
    doc: "Where nats-server keeps the delivery state of the command consumer this agent makes: memory (no state file written per delivery and ack; after a restart of a single nats-server the agent makes it again, from its last command) or file. An existing consumer keeps its own until deleted (docs/production.md)",
    format: ["memory", "file"],
    default: "memory" as "memory" | "file",
    env: "DEPLOY_AGENT_COMMAND_CONSUMER_STORAGE",
  },
  maxOutputLines: { doc: "Output lines of one apply sent as progress events; the rest are counted as cut", format: "nat", default: 200, env: "DEPLOY_AGENT_MAX_OUTPUT_LINES" },
  maxLineLength: { doc: "Longer output lines are truncated", format: "nat", default: 1000, env: "DEPLOY_AGENT_MAX_LINE_LENGTH" },
  shutdownGraceMs: {
    doc: "On SIGTERM, how long an in-flight apply may go on before it is killed and reported interrupted",
    format: "nat",
    default: 30_000,
    env: "DEPLOY_AGENT_SHUTDOWN_GRACE_MS",
  },
  shutdownWayBackMs: {
    doc: "After shutdownGraceMs killed an install, how long its way back to the previous release (that release's start hook) may still take; one cut short is taken again at the next start. Keep systemd's TimeoutStopSec above the grace plus this",
    format: "nat",
    default: DEFAULT_SHUTDOWN_WAY_BACK_MS,
    env: "DEPLOY_AGENT_SHUTDOWN_WAY_BACK_MS",
  },
  metricsListen: { doc: "host:port serving Prometheus metrics on GET /metrics; empty: off", format: String, default: "", env: "DEPLOY_AGENT_METRICS_LISTEN" },
  logLevel: { doc: "pino log level", format: ["fatal", "error", "warn", "info", "debug", "trace", "silent"], default: "info", env: "LOG_LEVEL" },
};

/** The keys of one app's entry in apps. */
const APP_KEYS = ["deploy", "user", "group", "env"];

/** An environment variable's name as a shell writes it; DEPLOY_* are the agent's own. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function invalid(key: string, problem: string): Error {
  return new Error(`invalid configuration: ${key}: ${problem}`);
}

export function validateAgentConfig(cfg: AgentConfig): AgentConfig {
  const idProblem = agentIdProblem(cfg.id);
  if (idProblem !== undefined) throw invalid("id", idProblem);
  if (!isToken(cfg.environment)) throw invalid("environment", cfg.environment ? `"${cfg.environment}" is not valid: use ${TOKEN_RULE}` : "is required");
  if (typeof cfg.apps !== "object" || cfg.apps === null || Array.isArray(cfg.apps)) throw invalid("apps", "must be an object");
  for (const [app, a] of Object.entries(cfg.apps)) {
    if (!isToken(app)) throw invalid(`apps.${app}`, `app name is not valid: use ${TOKEN_RULE}`);
    if (typeof a !== "object" || a === null || Array.isArray(a)) throw invalid(`apps.${app}`, 'must be an object like {"deploy": "/path"} or {}');
    for (const k of Object.keys(a)) if (!APP_KEYS.includes(k)) throw invalid(`apps.${app}.${k}`, `unknown key (allowed: ${APP_KEYS.join(", ")})`);
    if (a.deploy !== undefined && (typeof a.deploy !== "string" || !isAbsolute(a.deploy))) {
      throw invalid(`apps.${app}.deploy`, `${JSON.stringify(a.deploy)} must be an absolute path`);
    }
    if (a.env !== undefined) {
      if (typeof a.env !== "object" || a.env === null || Array.isArray(a.env)) throw invalid(`apps.${app}.env`, 'must be an object like {"NODE_ENV": "production"}');
      for (const [k, v] of Object.entries(a.env)) {
        if (!ENV_NAME.test(k)) throw invalid(`apps.${app}.env`, `${JSON.stringify(k.slice(0, 40))} is not a variable name (letters, digits and _, not starting with a digit)`);
        if (k.startsWith("DEPLOY_")) throw invalid(`apps.${app}.env.${k}`, "DEPLOY_* variables are the agent's own (DEPLOY_ID, DEPLOY_VERSION, …): use another name");
        if (typeof v !== "string") throw invalid(`apps.${app}.env.${k}`, "must be a string");
        if (v.includes("\0")) throw invalid(`apps.${app}.env.${k}`, "must not contain a NUL character");
      }
    }
    if (a.group !== undefined && a.user === undefined) throw invalid(`apps.${app}.group`, "needs apps." + app + ".user (the group of that account)");
    if (a.user !== undefined) {
      if (typeof a.user !== "string" && typeof a.user !== "number") throw invalid(`apps.${app}.user`, "must be a user name or uid");
      if (a.group !== undefined && typeof a.group !== "string" && typeof a.group !== "number") throw invalid(`apps.${app}.group`, "must be a group name or gid");
      try {
        a.runAs = resolveRunAs(String(a.user), a.group === undefined ? undefined : String(a.group), process.getuid?.() ?? 0);
      } catch (err) {
        throw invalid(`apps.${app}.user`, errorMessage(err));
      }
    }
  }
  for (const [k, v] of Object.entries(cfg.labels)) {
    // The same rule the registry reader applies: a label it would refuse would hide the agent.
    if (!MAP_KEY.test(k)) throw invalid("labels", `key ${JSON.stringify(k.slice(0, 40))} is not valid: use ${MAP_KEY_RULE}`);
    if (typeof v !== "string") throw invalid(`labels.${k}`, "must be a string");
  }
  cfg.trustedSigners = cfg.trustedSigners.map((k) => (typeof k === "string" ? k.trim() : k)).filter((k) => k !== "");
  cfg.trustedSigners.forEach((k, i) => {
    if (typeof k !== "string" || !isSignerPublicKey(k)) throw invalid(`trustedSigners[${i}]`, "must be a public user nkey (U followed by 55 characters)");
  });
  if (!cfg.nats.inboxPrefix) cfg.nats.inboxPrefix = `_INBOX_${cfg.id}`;
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(cfg.nats.inboxPrefix)) throw invalid("nats.inboxPrefix", "must be subject tokens separated by dots");
  if (cfg.nats.nkeySeedFile) {
    try {
      readSeedFile(cfg.nats.nkeySeedFile);
    } catch (err) {
      throw invalid("nats.nkeySeedFile", errorMessage(err));
    }
  }
  if (!cfg.devMode) {
    const how = "generate it with `npm run gen-credentials`, or start in development mode (devMode, DEPLOY_DEV_MODE=1: unsigned commands accepted)";
    if (cfg.trustedSigners.length === 0) throw invalid("trustedSigners", `is required in production mode (DEPLOY_AGENT_TRUSTED_SIGNERS: the coordinators' signing public key): ${how}`);
    if (!cfg.nats.nkeySeedFile) throw invalid("nats.nkeySeedFile", `is required in production mode (NATS_NKEY_SEED_FILE: this agent's own nkey): ${how}`);
  }
  if (!cfg.stateDir) throw invalid("stateDir", "is required");
  if (!isAbsolute(cfg.root)) throw invalid("root", `"${cfg.root}" must be an absolute path`);
  if (cfg.maxExpansionRatio < 1) throw invalid("maxExpansionRatio", "must be at least 1");
  if (cfg.maxUnpackedBytes < 1) throw invalid("maxUnpackedBytes", "must be at least 1");
  if (cfg.maxFiles < 2) throw invalid("maxFiles", "must be at least 2 (deploy.yaml and one more entry)");
  if (cfg.heartbeatIntervalMs < 100) throw invalid("heartbeatIntervalMs", "must be at least 100");
  if (cfg.idleHeartbeatIntervalMs !== 0 && cfg.idleHeartbeatIntervalMs < cfg.heartbeatIntervalMs) {
    throw invalid("idleHeartbeatIntervalMs", `must be 0 (heartbeatIntervalMs) or at least heartbeatIntervalMs (${cfg.heartbeatIntervalMs})`);
  }
  if (cfg.ackWaitMs < 3000) throw invalid("ackWaitMs", "must be at least 3000");
  if (cfg.journalKeepMs !== 0 && cfg.journalKeepMs < DAY_MS) throw invalid("journalKeepMs", `must be 0 (kept for ever) or at least ${DAY_MS} (one day; keep it longer than the coordinator's streams.commandsMaxAgeMs)`);
  return cfg;
}

const DAY_MS = 24 * 3600 * 1000;

/** Overrides merge key by key (convict), so a nested group may be given in part. */
export type AgentConfigOverrides = Partial<Omit<AgentConfig, "nats">> & { nats?: Partial<AgentConfig["nats"]> };

export function loadAgentConfig(argv: string[] = process.argv.slice(2), overrides?: AgentConfigOverrides): AgentConfig {
  const cfg = loadConfig<AgentConfig>(schema, configFileFrom(argv, "DEPLOY_AGENT_CONFIG"), overrides as Partial<AgentConfig> | undefined);
  return validateAgentConfig(cfg);
}
