// Every name a user sees in the nats CLI lives here, so the design's table of
// names (DESIGN.md "Names users see") has exactly one implementation.

export const COMMANDS_STREAM = "DEPLOY_COMMANDS";
export const EVENTS_STREAM = "DEPLOY_EVENTS";
export const AGENTS_BUCKET = "deploy_agents";
export const DEPLOYMENTS_BUCKET = "deploy_deployments";
/**
 * Changeset bundles: one object store bucket per app, so an agent's NATS
 * permissions can allow the buckets of the apps it is bound to and no
 * other (object subjects carry no app: names are base64, chunks a nuid).
 */
export const ARTIFACTS_BUCKET_PREFIX = "deploy_artifacts_";
export const artifactsBucket = (app: string): string => `${ARTIFACTS_BUCKET_PREFIX}${app}`;
/** The stream behind an object store bucket. */
export const objStreamName = (bucket: string): string => `OBJ_${bucket}`;
/**
 * The one bucket every artifact went to before per-app buckets, which every
 * agent could read. Never written any more; coordinators read it as a
 * fallback and copy what a deployment names into its app's bucket
 * (coordinator/src/artifacts/artifactStore.ts).
 */
export const LEGACY_ARTIFACTS_BUCKET = "deploy_artifacts";
/**
 * Who may act on a dispatched target: the agent (to start it) or a
 * coordinator (to time it out or cancel it). One KV create decides.
 */
/**
 * The desired release of each (app, environment): the last deployment that
 * succeeded there, one key per pair, its revisions the release history.
 * Written by coordinators only (compare-and-set), after the deployment's
 * finished event.
 */
export const RELEASES_BUCKET = "deploy_releases";
/**
 * Agents taken out of new deployments (CordonAgent): one key per agent id,
 * written by coordinators only; its revisions say who cordoned and
 * uncordoned it, when and why.
 */
export const CORDONS_BUCKET = "deploy_cordons";
export const CORDON_SCHEMA = "deploy.cordon.v1";
/**
 * Environments frozen (FreezeEnvironment): one key per environment, written
 * by coordinators only; its revisions say who froze and unfroze it, when,
 * why and until when.
 */
export const FREEZES_BUCKET = "deploy_freezes";
export const FREEZE_SCHEMA = "deploy.freeze.v1";
/**
 * Environment policies (SetEnvironmentPolicy): one key per environment,
 * written by coordinators only; its revisions say who set or cleared which
 * rules, when and why.
 */
export const POLICIES_BUCKET = "deploy_policies";
export const POLICY_SCHEMA = "deploy.policy.v1";
/** One key per running coordinator, rewritten as its heartbeat (rollout/membership.ts). */
export const COORDINATORS_BUCKET = "deploy_coordinators";
/** Durable consumer shared by all coordinators: each event wakes one of them. */
export const COORDINATOR_CONSUMER = "coordinator";
/** The coordinators' shared durable consumer of their own events on DEPLOY_EVENTS, made when notifications are on (coordinator/src/notifier.ts). */
export const NOTIFIER_CONSUMER = "notifier";
/** Source token of events written by coordinators. */
export const COORDINATOR_SOURCE = "coordinator";
/**
 * Source token of a large deployment's target chunks (deployment.targets),
 * written by its creating coordinator before deployment.created: a subject
 * of their own, so the created event's compare-and-set on the coordinator
 * subject (expected last sequence 0: created at most once) is unchanged.
 */
export const TARGETS_SOURCE = "targets";

export const COMMAND_SCHEMA = "deploy.command.v1";
export const EVENT_SCHEMA = "deploy.event.v1";
export const DEPLOYMENT_SCHEMA = "deploy.deployment.v1";
export const AGENT_SCHEMA = "deploy.agent.v1";
export const RELEASE_SCHEMA = "deploy.release.v1";

export const HDR_DEPLOY_ID = "Deploy-Id";
export const HDR_AGENT_ID = "Agent-Id";
export const HDR_EVENT_TYPE = "Deploy-Event";
/**
 * "true" on every coordinator event decided on a view in which a cancel was
 * requested. Coordinator events are chained by compare-and-set, so each one
 * after deployment.cancel_requested was decided on a view that holds it: the
 * agent's one-get look at the last coordinator event sees the cancel even
 * when a target.timed_out came after it.
 */
export const HDR_CANCEL_REQUESTED = "Deploy-Cancel-Requested";
/**
 * Set on every coordinator event from a cancel with kill_running on: an
 * agent applying the deployment looks for it while the apply runs, and
 * kills it (services/agent/src/handleCommand.ts). Its own header, not a
 * value of HDR_CANCEL_REQUESTED: agents from before read that one as "true".
 */
export const HDR_KILL_REQUESTED = "Deploy-Kill-Requested";

// A token is one level of a NATS subject: no dots, whitespace, wildcards, and
// kept to characters that are also safe in KV keys, consumer names and file
// names (the agent journal is keyed by deployment id).
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

export const TOKEN_RULE = "1-64 characters from A-Z a-z 0-9 _ - (a NATS subject token)";

/**
 * Source tokens the protocol writes under for itself
 * (`deploy.evt.<deployment>.<source>`): an agent with one of these ids could
 * publish, and be read, as the coordinator. Refused wherever an id enters:
 * agent config, credentials generation, the API, every parsed message.
 */
export const RESERVED_AGENT_IDS: readonly string[] = [COORDINATOR_SOURCE, TARGETS_SOURCE];

/** Why `s` cannot be an agent id, or undefined when it can. */
export function agentIdProblem(s: string): string | undefined {
  if (!isToken(s)) return `"${s.slice(0, 80)}" is not valid: use ${TOKEN_RULE}`;
  if (RESERVED_AGENT_IDS.includes(s)) return `"${s}" is reserved for the protocol's own events (reserved: ${RESERVED_AGENT_IDS.join(", ")})`;
  return undefined;
}

export function isAgentId(s: string): boolean {
  return agentIdProblem(s) === undefined;
}

/**
 * Where a coordinator publishes an agent's commands. An agent that says so
 * in its entry (AgentRecord.commandQueue) takes all of them on one subject,
 * deploy.cmd.<agent>.queue, which its consumer filters literally; an older
 * agent takes each on a subject of its own, deploy.cmd.<agent>.<deployment>,
 * through the wildcard deploy.cmd.<agent>.> (which matches both). With a
 * subject per command, nats-server finds a consumer's next message by
 * matching every subject stored after its position against the wildcard:
 * 22-40 % of its CPU in profiles of the bench's rollouts to 10,000 agents,
 * work that grows with the square of the fleet. With a literal filter it
 * looks the subject up in its index (docs/performance.md).
 */
export const commandSubject = (agentId: string, deploymentId: string, queue = false): string =>
  queue ? agentCommandQueue(agentId) : `deploy.cmd.${agentId}.${deploymentId}`;
/** The last token of an agent's command queue subject: never a deployment id (those start with "d-"). */
export const COMMAND_QUEUE_TOKEN = "queue";
/** An agent's command queue: every command to an agent whose entry says commandQueue. */
export const agentCommandQueue = (agentId: string): string => `deploy.cmd.${agentId}.${COMMAND_QUEUE_TOKEN}`;
/** The filter of an agent from before the command queue: every command subject of the agent, the queue's too. */
export const agentCommandFilter = (agentId: string): string => `deploy.cmd.${agentId}.>`;
export const eventSubject = (deploymentId: string, source: string): string => `deploy.evt.${deploymentId}.${source}`;
export const deploymentEventFilter = (deploymentId: string): string => `deploy.evt.${deploymentId}.>`;
/**
 * An idle agent's heartbeat: a core NATS publish on its own subject, heard
 * by every coordinator (registry.ts), answered and stored nowhere. Only an
 * agent between a won race and its result stores its heartbeats
 * (deploy_agents): the start lease's evidence. docs/how-it-works.md.
 */
export const heartbeatSubject = (agentId: string): string => `deploy.hb.${agentId}`;
export const HEARTBEAT_SUBJECTS = "deploy.hb.*";
/**
 * A coordinator's request to every agent: empty, a heartbeat now (a
 * coordinator that starts, rather than wait an interval); with
 * `{"register": [ids]}`, those agents write their entry again (heard, but
 * unknown to it: the entry was deleted); with `{"kill": id}` (killNotice),
 * the agents applying that deployment look at once for its cancel with
 * kill_running, stored just before, instead of at their next look.
 */
export const HEARTBEAT_REQUEST_SUBJECT = "deploy.hb-request";
/** The body of a kill notice on HEARTBEAT_REQUEST_SUBJECT: one message to every agent, not one per target. */
export const killNotice = (deploymentId: string): string => JSON.stringify({ kill: deploymentId });
export const agentConsumerName = (agentId: string): string => `agent-${agentId}`;
/** Published by a clustered server when a consumer gets a new leader (whose outstanding pulls are lost). */
export const consumerLeaderElectedSubject = (stream: string, consumer: string): string => `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${stream}.${consumer}`;
/** Nats-Msg-Id of a command: a re-publish of the same command is dropped. */
export const commandMsgId = (deploymentId: string, agentId: string): string => `${deploymentId}.${agentId}`;
/** Nats-Msg-Id of an agent's report, so a re-report inside the window is dropped. */
export const agentEventMsgId = (deploymentId: string, agentId: string, kind: string): string =>
  `${deploymentId}.${agentId}.${kind}`;

/**
 * Parses `deploy.cmd.<agent>.<deployment>` and `deploy.cmd.<agent>.queue`
 * (deploymentId undefined: the command's payload names it); undefined when
 * it is neither.
 */
export function parseCommandSubject(subject: string): { agentId: string; deploymentId: string | undefined } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "deploy" || parts[1] !== "cmd") return undefined;
  return { agentId: parts[2]!, deploymentId: parts[3] === COMMAND_QUEUE_TOKEN ? undefined : parts[3]! };
}

/** Parses `deploy.evt.<deployment>.<source>`. */
export function parseEventSubject(subject: string): { deploymentId: string; source: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "deploy" || parts[1] !== "evt") return undefined;
  return { deploymentId: parts[2]!, source: parts[3]! };
}

/** The stream behind a KV bucket, and the subject of one of its keys. */
export const kvStreamName = (bucket: string): string => `KV_${bucket}`;
export const kvKeySubject = (bucket: string, key: string): string => `$KV.${bucket}.${key}`;

// KV keys in deploy_deployments besides the deployment ids themselves.
/** Maps a client request id (hashed: it is free text) to the deployment it made. */
export const requestKey = (requestHash: string): string => `req.${requestHash}`;
/** Held by the one active deployment of an (app, environment). */
export const activeKey = (app: string, environment: string): string => `active.${app}.${environment}`;
export const ACTIVE_FILTER = "active.>";
/**
 * The list index: one small entry per deployment under its app and
 * environment (coordinator/src/queries/deploymentIndex.ts), so ListDeployments
 * filters by key and state without loading every deployment.
 */
export const indexKey = (app: string, environment: string, deploymentId: string): string => `idx.${app}.${environment}.${deploymentId}`;
export const indexFilter = (app?: string, environment?: string): string => `idx.${app ?? "*"}.${environment ?? "*"}.*`;

/**
 * One shard of a large deployment's projection (js/projection.ts): the
 * deployment's key holds a summary, these its targets in fixed-size pieces.
 */
export const shardKey = (deploymentId: string, index: number): string => `shard.${deploymentId}.${index}`;

/** Key in deploy_releases of an (app, environment). */
export const releaseKey = (app: string, environment: string): string => `${app}.${environment}`;

/**
 * The name an agent installs a deployment's changeset under (its release
 * directory, and what ListAgents shows as current):
 * `<version>-<last 8 of the deployment id>`, safe as a directory name.
 */
export function releaseName(version: string, deploymentId: string): string {
  return `${version.replace(/[^A-Za-z0-9._-]/g, "_")}-${deploymentId.slice(-8)}`;
}

/**
 * request_id of the deployment that brings `agentId` to the desired release
 * `desiredDeploymentId` made: the same on every coordinator and at every
 * retry, so it is created once (and, once it has run, never again: a failed
 * convergence is not retried by itself).
 */
export const convergenceRequestId = (app: string, environment: string, agentId: string, desiredDeploymentId: string): string =>
  `converge.${app}.${environment}.${agentId}.${desiredDeploymentId}`;
