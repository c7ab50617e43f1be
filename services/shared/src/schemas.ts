// The messages both sides speak, and the one validator per message type.
// Everything read from NATS is `unknown` until it passes through here.
// Readers accept extra fields, so a v1 message that gains fields stays readable.
import { asArtifactName, asDigest, type ArtifactRef } from "./artifacts.js";
import { ValidationError } from "./errors.js";
import { parseFreezeOverride, type FreezeOverride } from "./freeze.js";
import { IDENTITY_SOURCES, MAX_IDENTITY_LENGTH, type IdentitySource } from "./identity.js";
import { AGENT_SCHEMA, COMMAND_SCHEMA, EVENT_SCHEMA, releaseName } from "./names.js";
import { SELECTIONS, type Selection } from "./release.js";
import { MAX_SELECTOR_LENGTH } from "./selector.js";
import {
  asBoolean,
  asEnum,
  asInt,
  asIsoTime,
  asObject,
  asOptionalString,
  asString,
  asStringArray,
  asStringMap,
  asAgentId,
  asToken,
  parseJson,
  type Obj,
} from "./validate.js";

export const TARGET_STATES = ["PENDING", "DISPATCHED", "APPLYING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"] as const;
export type TargetState = (typeof TARGET_STATES)[number];
export const DEPLOYMENT_STATES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];
export const TERMINAL_DEPLOYMENT_STATES: readonly DeploymentState[] = ["SUCCEEDED", "FAILED", "CANCELLED"];
export const TERMINAL_TARGET_STATES: readonly TargetState[] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];
export const isTerminalDeployment = (s: DeploymentState): boolean => TERMINAL_DEPLOYMENT_STATES.includes(s);
export const isTerminalTarget = (s: TargetState): boolean => TERMINAL_TARGET_STATES.includes(s);

const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;

export interface Strategy {
  /** Resolved count: what the planner uses (a percentage given is resolved at creation). */
  maxConcurrency: number;
  /** Resolved count: failures beyond it stop the rollout (never the verdict: any failure fails the deployment). */
  maxFailures: number;
  /** The percentage of the targets max_concurrency was given as (1-100), for display; absent when given as a count. */
  maxConcurrencyPercent?: number;
  /** The percentage of the targets max_failures was given as (0-100), for display; absent when given as a count. */
  maxFailuresPercent?: number;
  deliveryTimeoutMs: number;
  applyTimeoutMs: number;
  /**
   * Resolved count of the canary wave: the first this-many targets of the
   * rollout order (offline ones left out) are deployed, then the rollout
   * waits for a promote (or canarySoakMs). Absent or 0: no canary wave.
   */
  canary?: number;
  /** The percentage canary was given as (1-100), for display. */
  canaryPercent?: number;
  /** Promote by itself this long after the canary wave succeeded; absent: wait for PromoteDeployment. */
  canarySoakMs?: number;
  /**
   * How long the rollout may wait, paused or for a promote, before the
   * coordinator cancels what is left (DESIGN.md: every deployment finishes
   * in bounded time). Absent in specs from before pauses: DEFAULT_MAX_PAUSE_MS.
   */
  maxPauseMs?: number;
  /** On FAILED, bring the targets that started back to spec.revertTo (a linked deployment). */
  autoRevert?: boolean;
  /** A failing stop hook of the release being replaced does not fail the install (Command.ignoreStopFailures). */
  ignoreStopFailures?: boolean;
  /** Bake time: a target that SUCCEEDED keeps its slot this long before the next target takes it; absent: none. */
  soakMs?: number;
  /**
   * Only the targets not already on this changeset were deployed to (the
   * others are spec.currentTargets, SKIPPED from the start). Recorded for
   * display and the audit; the targets were resolved with it at creation.
   */
  onlyOutdated?: boolean;
}

/** 24 hours. */
export const DEFAULT_MAX_PAUSE_MS = 24 * 3600 * 1000;

/** The longest note a deployment records (spec.requestedByNote): a client's is refused over it, one the coordinator writes is cut to it. */
export const MAX_NOTE_LENGTH = 256;

/**
 * A note the coordinator writes (a rollback's, a revert's, a convergence's)
 * cut to MAX_NOTE_LENGTH: they name releases, whose versions may take 128
 * characters each, and a spec whose note is longer is unreadable (the
 * parse above refuses it).
 */
export function noteWithin(note: string): string {
  return note.length <= MAX_NOTE_LENGTH ? note : `${note.slice(0, MAX_NOTE_LENGTH - 1)}…`;
}

/**
 * A release a deployment restores: a desired release (releases/) as
 * recorded when the deployment was created.
 */
export interface RestoredRelease {
  /** The deployment that made it the desired release. */
  deploymentId: string;
  version: string;
  /** What agents install it as (names.ts releaseName). */
  release: string;
  artifact?: { name: string; digest: string };
}

/** A desired release of another environment, which a deployment promotes (CreateDeploymentRequest.promote_from). */
export interface PromotedRelease extends RestoredRelease {
  environment: string;
  /** When its deployment succeeded there (stream time of its finished event); absent in a spec from before 2026-12-05. */
  succeededAt?: string;
}

export interface Changeset {
  version: string;
  /** The bundle to install; without it the agent runs the app's deploy executable. */
  artifact?: ArtifactRef;
}

/** What a deployment is: fixed at creation, carried by its first event. */
export interface DeploymentSpec {
  id: string;
  requestId: string;
  /** SHA-256 of the canonical request body: same id + other body = ALREADY_EXISTS. */
  requestHash: string;
  app: string;
  environment: string;
  changeset: Changeset;
  strategy: Strategy;
  /**
   * Every target, in rollout order. In a deployment.created event whose
   * targets are chunked (targetChunks) it is empty there, and the fold fills
   * it in from the chunks: a folded record always holds them all.
   */
  targets: string[];
  /**
   * A large deployment's created event lists its targets (and offline
   * targets) in deployment.targets events instead of here: the stream
   * sequences of those chunks, in order, all stored before the created event
   * (the commit point). Absent when the targets fit in the created event.
   */
  targetChunks?: number[];
  /** With targetChunks: how many targets the chunks hold (checked by the fold). */
  targetCount?: number;
  /**
   * Who asked: the authenticated identity (a token's name, a client
   * certificate's CN, or "anonymous (development mode)"), never what the
   * client wrote. In specs from before identities were recorded (no
   * requestedByVia) it is the client's free text: read it with requesterOf.
   */
  requestedBy: string;
  /** How requestedBy was established; absent in specs from before identities were recorded. */
  requestedByVia?: IdentitySource;
  /** The client's free-text note (CreateDeploymentRequest.requested_by): shown, never trusted as the identity. */
  requestedByNote?: string;
  /**
   * The label selector the targets were chosen by (canonical form:
   * selector.ts), when one was given. For display and the audit log: the
   * targets above are what the rollout uses.
   */
  selector?: string;
  /**
   * The agents among the targets that were registered for the app and
   * environment (and matched the selector, when one was given) but not live
   * when the deployment was created, with their last heartbeat. They are
   * targets all the same, SKIPPED from the start by the fold ("offline at
   * creation: last heartbeat <time>"): recorded, never dropped silently.
   */
  offlineTargets?: Record<string, string>;
  /**
   * Whether convergence was on for the environment when the deployment was
   * created (set only with offlineTargets): the offline targets are then
   * brought to the release when they come back, and a deployment whose only
   * shortfall is offline targets SUCCEEDS (rollout/plan.ts finishOf).
   * Recorded, so the verdict is a function of the stream, not of a
   * coordinator's configuration at the time it finishes.
   */
  convergeOffline?: boolean;
  /**
   * With strategy.onlyOutdated: the live targets that already ran this
   * changeset (the same version and artifact) when the deployment was
   * created, with the release they ran. Targets all the same, SKIPPED from
   * the start by the fold ("already on <release>") and counted as done by
   * the verdict: never dispatched, never a failure.
   */
  currentTargets?: Record<string, string>;
  /**
   * Cordoned agents the selection left out at creation (not targets): the
   * first MAX_CORDONED_RECORDED ids, and how many in all. For the audit:
   * why an agent of the app and environment did not get this release.
   */
  cordonedLeftOut?: { ids: string[]; count: number };
  /**
   * Set on a convergence deployment: the id of the deployment that made the
   * desired release this one brings its target to. A convergence
   * deployment never becomes the desired release itself.
   */
  convergesTo?: string;
  /**
   * How the targets were chosen: every agent of the app and environment
   * ("all"), a selector, or an explicit list ("targets"). Decides which
   * agents convergence brings to this deployment's release once it is the
   * desired one. Absent in specs from before it was recorded (read as
   * "targets": spread to no one).
   */
  selection?: Selection;
  /**
   * With strategy.autoRevert: the desired release when this deployment was
   * created, which its changed targets are brought back to if it FAILS.
   * Absent when there was none (nothing to revert to: the finish says so).
   */
  revertTo?: RestoredRelease;
  /** An automatic revert: the FAILED deployment whose changed targets this one brings back. */
  reverts?: string;
  /** A revert or a RollbackRelease: the release this deployment restores (its changeset is that release's). */
  restores?: RestoredRelease;
  /** Created with promote_from: the desired release of its app in that environment when it was created (its changeset is that release's). */
  promotedFrom?: PromotedRelease;
  /** Created while its environment was frozen, by a request that overrode the freeze: why, and which freeze. */
  freezeOverride?: FreezeOverride;
}

function parsePromoted(v: unknown, field: string): PromotedRelease {
  const o = asObject(v, field);
  return {
    environment: asToken(o.environment, `${field}.environment`),
    ...parseRestored(v, field),
    ...(o.succeededAt === undefined ? {} : { succeededAt: asIsoTime(o.succeededAt, `${field}.succeededAt`) }),
  };
}

function parseRestored(v: unknown, field: string): RestoredRelease {
  const o = asObject(v, field);
  const a = o.artifact === undefined || o.artifact === null ? undefined : asObject(o.artifact, `${field}.artifact`);
  return {
    deploymentId: asToken(o.deploymentId, `${field}.deploymentId`),
    version: asString(o.version, `${field}.version`, { maxLength: 128 }),
    release: asString(o.release, `${field}.release`, { maxLength: 256 }),
    ...(a ? { artifact: { name: asArtifactName(a.name, `${field}.artifact.name`), digest: asDigest(a.digest, `${field}.artifact.digest`) } } : {}),
  };
}

/** A map of agent id → `value`, every key one of `targets`. */
function parseTargetMap(v: unknown, field: string, targets: readonly string[], value: (v: unknown, field: string) => string): Record<string, string> {
  const o = asObject(v, field);
  const known = new Set(targets);
  const out: Record<string, string> = {};
  for (const [id, x] of Object.entries(o)) {
    asAgentId(id, `${field} key`);
    if (!known.has(id)) throw new ValidationError(field, `${id} is not one of the targets`);
    out[id] = value(x, `${field}.${id}`);
  }
  return out;
}

/** `offlineTargets`: agent id → last heartbeat. */
const parseOfflineTargets = (v: unknown, field: string, targets: readonly string[]): Record<string, string> => parseTargetMap(v, field, targets, asIsoTime);
/** `currentTargets`: agent id → the release it ran (names.ts releaseName). */
const parseCurrentTargets = (v: unknown, field: string, targets: readonly string[]): Record<string, string> =>
  parseTargetMap(v, field, targets, (x, f) => asString(x, f, { maxLength: 256 }));

/** The most cordoned agents a deployment names as left out (spec.cordonedLeftOut): the rest are counted. */
export const MAX_CORDONED_RECORDED = 100;

function parseCordonedLeftOut(v: unknown, field: string): { ids: string[]; count: number } {
  const o = asObject(v, field);
  const ids = asStringArray(o.ids, `${field}.ids`, asAgentId, MAX_CORDONED_RECORDED);
  return { ids, count: asInt(o.count, `${field}.count`, ids.length, MAX_TARGETS) };
}

/** The most targets one deployment may have (CreateDeploymentRequest: requests.ts). */
export const MAX_TARGETS = 100_000;
/** The most deployment.targets chunks one deployment may have: 100,000 targets of the longest id fit in ~30. */
export const MAX_TARGET_CHUNKS = 1000;
/** The most targets one deployment.targets chunk may name (chunks are cut by bytes first: limits.ts). */
export const MAX_CHUNK_TARGETS = 20_000;

function asIntArray(v: unknown, field: string, maxItems: number): number[] {
  if (!Array.isArray(v)) throw new ValidationError(field, "must be an array");
  if (v.length === 0 || v.length > maxItems) throw new ValidationError(field, `must have 1 to ${maxItems} items`);
  return v.map((x, i) => asInt(x, `${field}[${i}]`, 1, Number.MAX_SAFE_INTEGER));
}

function parseStrategy(v: unknown, field: string): Strategy {
  const o = asObject(v, field);
  return {
    maxConcurrency: asInt(o.maxConcurrency, `${field}.maxConcurrency`, 1, 100_000),
    maxFailures: asInt(o.maxFailures, `${field}.maxFailures`, 0, 100_000),
    ...(o.maxConcurrencyPercent === undefined ? {} : { maxConcurrencyPercent: asInt(o.maxConcurrencyPercent, `${field}.maxConcurrencyPercent`, 1, 100) }),
    ...(o.maxFailuresPercent === undefined ? {} : { maxFailuresPercent: asInt(o.maxFailuresPercent, `${field}.maxFailuresPercent`, 0, 100) }),
    deliveryTimeoutMs: asInt(o.deliveryTimeoutMs, `${field}.deliveryTimeoutMs`, 1, MAX_TIMEOUT_MS),
    applyTimeoutMs: asInt(o.applyTimeoutMs, `${field}.applyTimeoutMs`, 1, MAX_TIMEOUT_MS),
    ...(o.canary === undefined ? {} : { canary: asInt(o.canary, `${field}.canary`, 0, 100_000) }),
    ...(o.canaryPercent === undefined ? {} : { canaryPercent: asInt(o.canaryPercent, `${field}.canaryPercent`, 1, 100) }),
    ...(o.canarySoakMs === undefined ? {} : { canarySoakMs: asInt(o.canarySoakMs, `${field}.canarySoakMs`, 1, MAX_TIMEOUT_MS) }),
    ...(o.maxPauseMs === undefined ? {} : { maxPauseMs: asInt(o.maxPauseMs, `${field}.maxPauseMs`, 1, MAX_TIMEOUT_MS) }),
    ...(o.autoRevert === undefined ? {} : { autoRevert: asBoolean(o.autoRevert, `${field}.autoRevert`) }),
    ...(o.onlyOutdated === undefined ? {} : { onlyOutdated: asBoolean(o.onlyOutdated, `${field}.onlyOutdated`) }),
    ...(o.ignoreStopFailures === undefined ? {} : { ignoreStopFailures: asBoolean(o.ignoreStopFailures, `${field}.ignoreStopFailures`) }),
    ...(o.soakMs === undefined ? {} : { soakMs: asInt(o.soakMs, `${field}.soakMs`, 1, MAX_TIMEOUT_MS) }),
  };
}

function parseChangeset(v: unknown, field: string): Changeset {
  const o = asObject(v, field);
  const version = asString(o.version, `${field}.version`, { maxLength: 128 });
  if (o.artifact === undefined || o.artifact === null) return { version };
  const a = asObject(o.artifact, `${field}.artifact`);
  return {
    version,
    artifact: {
      name: asArtifactName(a.name, `${field}.artifact.name`),
      digest: asDigest(a.digest, `${field}.artifact.digest`),
      size: asInt(a.size, `${field}.artifact.size`, 0, Number.MAX_SAFE_INTEGER),
    },
  };
}

export function parseSpec(v: unknown, field = "spec"): DeploymentSpec {
  const o = asObject(v, field);
  return {
    id: asToken(o.id, `${field}.id`),
    requestId: asString(o.requestId, `${field}.requestId`, { maxLength: 256 }),
    requestHash: asString(o.requestHash, `${field}.requestHash`, { maxLength: 128 }),
    app: asToken(o.app, `${field}.app`),
    environment: asToken(o.environment, `${field}.environment`),
    changeset: parseChangeset(o.changeset, `${field}.changeset`),
    strategy: parseStrategy(o.strategy, `${field}.strategy`),
    targets: asStringArray(o.targets, `${field}.targets`, asAgentId, MAX_TARGETS),
    ...(o.targetChunks === undefined ? {} : { targetChunks: asIntArray(o.targetChunks, `${field}.targetChunks`, MAX_TARGET_CHUNKS) }),
    ...(o.targetCount === undefined ? {} : { targetCount: asInt(o.targetCount, `${field}.targetCount`, 1, MAX_TARGETS) }),
    requestedBy: asOptionalString(o.requestedBy, `${field}.requestedBy`, MAX_IDENTITY_LENGTH) ?? "",
    ...(o.requestedByVia === undefined ? {} : { requestedByVia: asEnum(o.requestedByVia, `${field}.requestedByVia`, IDENTITY_SOURCES) }),
    ...(o.requestedByNote === undefined ? {} : { requestedByNote: asString(o.requestedByNote, `${field}.requestedByNote`, { maxLength: MAX_NOTE_LENGTH, allowEmpty: true }) }),
    // Read as text, not parsed again: the targets were resolved from it at
    // creation, and a reader must not lose a deployment to a grammar change.
    ...(o.selector === undefined ? {} : { selector: asString(o.selector, `${field}.selector`, { maxLength: MAX_SELECTOR_LENGTH }) }),
    ...(o.offlineTargets === undefined ? {} : { offlineTargets: parseOfflineTargets(o.offlineTargets, `${field}.offlineTargets`, asStringArray(o.targets, `${field}.targets`, asAgentId)) }),
    ...(o.convergeOffline === undefined ? {} : { convergeOffline: asBoolean(o.convergeOffline, `${field}.convergeOffline`) }),
    ...(o.currentTargets === undefined ? {} : { currentTargets: parseCurrentTargets(o.currentTargets, `${field}.currentTargets`, asStringArray(o.targets, `${field}.targets`, asAgentId)) }),
    ...(o.cordonedLeftOut === undefined ? {} : { cordonedLeftOut: parseCordonedLeftOut(o.cordonedLeftOut, `${field}.cordonedLeftOut`) }),
    ...(o.convergesTo === undefined ? {} : { convergesTo: asToken(o.convergesTo, `${field}.convergesTo`) }),
    ...(o.selection === undefined ? {} : { selection: asEnum(o.selection, `${field}.selection`, SELECTIONS) }),
    ...(o.revertTo === undefined ? {} : { revertTo: parseRestored(o.revertTo, `${field}.revertTo`) }),
    ...(o.reverts === undefined ? {} : { reverts: asToken(o.reverts, `${field}.reverts`) }),
    ...(o.restores === undefined ? {} : { restores: parseRestored(o.restores, `${field}.restores`) }),
    ...(o.promotedFrom === undefined ? {} : { promotedFrom: parsePromoted(o.promotedFrom, `${field}.promotedFrom`) }),
    ...(o.freezeOverride === undefined ? {} : { freezeOverride: parseFreezeOverride(o.freezeOverride, `${field}.freezeOverride`) }),
  };
}

// ---------------------------------------------------------------------------
// Commands: one per (deployment, target), on deploy.cmd.<agent>.queue or,
// for an agent from before it, deploy.cmd.<agent>.<deployment> (names.ts).

export interface Command {
  schema: typeof COMMAND_SCHEMA;
  deploymentId: string;
  agentId: string;
  app: string;
  environment: string;
  changeset: Changeset;
  applyTimeoutMs: number;
  /** strategy.ignore_stop_failures: the release being replaced failing its stop hook does not fail the install. */
  ignoreStopFailures?: boolean;
  /**
   * The start lease: the agent starts nothing (no executable, no hook) unless
   * an acknowledged heartbeat had been sent less than this long before, on its
   * own monotonic clock, at every moment since it claimed the target. The
   * coordinator that issued the command declares an agent dead only after a
   * longer silence (its agentLiveMs; the lease is 90 % of it), so an agent
   * that was paused long enough to be timed out never starts late. Absent in commands from before
   * the lease: DEFAULT_START_LEASE_MS.
   */
  startLeaseMs?: number;
  /**
   * The issuing coordinator fences every cancel on the targets' own subjects:
   * it stores a cancel's target.cancelled on each dispatched target before
   * the request itself (rollout/plan.ts cancelDecisions), and keeps events
   * at least as long as commands, so the target's race alone decides
   * whether this start comes before a cancel or a finish, and the agent
   * makes no look at the deployment. Absent (a coordinator from before
   * 2026-12-05, or events kept shorter than commands): the agent looks.
   */
  cancelFenced?: boolean;
  issuedAt: string;
}

/** 90 % of the coordinator's default agentLiveMs (15 s). */
export const DEFAULT_START_LEASE_MS = 13_500;

export function parseCommand(data: Uint8Array | string): Command {
  const o = asObject(parseJson(data, "command"), "command");
  if (o.schema !== COMMAND_SCHEMA) {
    throw new ValidationError("command.schema", `expected "${COMMAND_SCHEMA}", got ${JSON.stringify(o.schema)?.slice(0, 80)}`);
  }
  return {
    schema: COMMAND_SCHEMA,
    deploymentId: asToken(o.deploymentId, "command.deploymentId"),
    agentId: asAgentId(o.agentId, "command.agentId"),
    app: asToken(o.app, "command.app"),
    environment: asToken(o.environment, "command.environment"),
    changeset: parseChangeset(o.changeset, "command.changeset"),
    applyTimeoutMs: asInt(o.applyTimeoutMs, "command.applyTimeoutMs", 1, MAX_TIMEOUT_MS),
    ...(o.ignoreStopFailures === undefined ? {} : { ignoreStopFailures: asBoolean(o.ignoreStopFailures, "command.ignoreStopFailures") }),
    ...(o.startLeaseMs === undefined ? {} : { startLeaseMs: asInt(o.startLeaseMs, "command.startLeaseMs", 1, MAX_TIMEOUT_MS) }),
    ...(o.cancelFenced === undefined ? {} : { cancelFenced: asBoolean(o.cancelFenced, "command.cancelFenced") }),
    issuedAt: asIsoTime(o.issuedAt, "command.issuedAt"),
  };
}

// ---------------------------------------------------------------------------
// Events: deploy.evt.<deployment>.<source>, the audit log and source of truth.

export type EventBody =
  /**
   * `dispatched`: the first targets it dispatches, when its creator decided
   * them with it (rollout/plan.ts, the same decision a targets.dispatched
   * would be, at the event's own time): one stored event and one round trip
   * less before the first command. Older coordinators, which do not read it,
   * dispatch those targets again with an event the fold finds without
   * effect, and their repeated commands are dropped as duplicates.
   */
  | { type: "deployment.created"; spec: DeploymentSpec; dispatched?: string[] }
  /**
   * A chunk of a large deployment's targets, in rollout order, with those of
   * them offline at creation (agent id → last heartbeat). Written on
   * deploy.evt.<id>.targets before deployment.created, which lists the
   * sequences of the chunks it is made of (spec.targetChunks); a chunk it
   * does not list (left by a creator that died half-way) changes nothing.
   */
  | { type: "deployment.targets"; agentIds: string[]; offline?: Record<string, string>; current?: Record<string, string> }
  | { type: "deployment.started" }
  | { type: "target.dispatched"; agentId: string }
  | { type: "targets.dispatched"; agentIds: string[] }
  /**
   * The agent's side of the per-target race (js/raceForTarget.ts): appended
   * on the target's own subject by compare-and-set, so it and a
   * coordinator's delivery timeout or cancel of the target cannot both be
   * stored. `nonce` tells the agent that a stored start is its own when the
   * reply to its append was lost.
   */
  | { type: "target.started"; agentId: string; nonce?: string }
  | { type: "target.progress"; agentId: string; lines: string[]; linesCut: number }
  | { type: "target.result"; agentId: string; outcome: "SUCCEEDED" | "FAILED"; message: string; exitCode: number | null; durationMs: number; rolledBack?: boolean }
  /**
   * `afterStart`: the agent's own start had won the target's race, and its
   * look after the race found the deployment cancelled, finished or gone:
   * it ran nothing (fold.ts ends the APPLYING target).
   */
  | { type: "target.declined"; agentId: string; reason: string; afterStart?: true }
  | { type: "target.timed_out"; agentId: string; phase: "delivery" | "apply"; message: string }
  | { type: "target.cancelled"; agentId: string; message: string }
  | { type: "deployment.halted"; message: string }
  /** `by`: who asked (the authenticated identity); absent in events from before it was recorded. */
  /** `revertTo`: the cancel asked for a revert (CancelDeployment's revert): the release the changed targets go back to once CANCELLED. */
  | { type: "deployment.cancel_requested"; reason: string; by?: string; byVia?: IdentitySource; kill?: true; revertTo?: RestoredRelease }
  | { type: "deployment.finished"; state: "SUCCEEDED" | "FAILED" | "CANCELLED"; message: string }
  /** Dispatching stops until deployment.resumed; `by` as for a cancel. */
  | { type: "deployment.paused"; reason: string; by: string; byVia?: IdentitySource }
  | { type: "deployment.resumed"; by: string; byVia?: IdentitySource }
  /** Every canary SUCCEEDED: the rollout waits for deployment.promoted. */
  | { type: "deployment.canary_done"; message: string }
  /** `by` "canary_soak" when the soak time promoted it. */
  | { type: "deployment.promoted"; by: string; byVia?: IdentitySource }
  | { type: "agent.rejected_message"; agentId: string; subject: string; error: string };

export type EventType = EventBody["type"];
export type DeployEvent = EventBody & { schema: typeof EVENT_SCHEMA; deploymentId: string; time: string };

export function makeEvent(deploymentId: string, body: EventBody): DeployEvent {
  return { schema: EVENT_SCHEMA, deploymentId, time: new Date().toISOString(), ...body };
}

const MAX_LINE = 4096;
/**
 * Most targets one targets.dispatched event names (~70 bytes each at the
 * longest agent id: under 64 KB, far below any max_payload). A coordinator
 * dispatching more appends several events.
 */
export const MAX_DISPATCH_BATCH = 1000;

/** The targets one dispatch names: at least one, at most MAX_DISPATCH_BATCH, none twice. */
function parseDispatched(v: unknown, field: string): string[] {
  const agentIds = asStringArray(v, field, (s, f) => asAgentId(s, f), MAX_DISPATCH_BATCH);
  if (agentIds.length === 0) throw new ValidationError(field, "must name at least one agent");
  if (new Set(agentIds).size !== agentIds.length) throw new ValidationError(field, "must not repeat an agent");
  return agentIds;
}

/** The targets an event dispatches: a target.dispatched's, a targets.dispatched's, or those a deployment.created dispatched with it. */
export function dispatchedIdsOf(e: EventBody): string[] {
  return e.type === "target.dispatched" ? [e.agentId] : e.type === "targets.dispatched" ? e.agentIds : e.type === "deployment.created" ? (e.dispatched ?? []) : [];
}

function parseEventBody(o: Obj): EventBody {
  const type = asString(o.type, "event.type", { maxLength: 64 });
  const agentId = (): string => asAgentId(o.agentId, "event.agentId");
  const message = (): string => asString(o.message, "event.message", { maxLength: 16_384, allowEmpty: true });
  switch (type) {
    case "deployment.created":
      return { type, spec: parseSpec(o.spec, "event.spec"), ...(o.dispatched === undefined ? {} : { dispatched: parseDispatched(o.dispatched, "event.dispatched") }) };
    case "deployment.targets": {
      const agentIds = asStringArray(o.agentIds, "event.agentIds", (s, f) => asAgentId(s, f), MAX_CHUNK_TARGETS);
      if (agentIds.length === 0) throw new ValidationError("event.agentIds", "must name at least one agent");
      return {
        type,
        agentIds,
        ...(o.offline === undefined ? {} : { offline: parseOfflineTargets(o.offline, "event.offline", agentIds) }),
        ...(o.current === undefined ? {} : { current: parseCurrentTargets(o.current, "event.current", agentIds) }),
      };
    }
    case "deployment.started":
      return { type };
    case "target.dispatched":
      return { type, agentId: agentId() };
    case "target.started":
      return { type, agentId: agentId(), ...(o.nonce === undefined ? {} : { nonce: asString(o.nonce, "event.nonce", { maxLength: 64 }) }) };
    case "targets.dispatched":
      return { type, agentIds: parseDispatched(o.agentIds, "event.agentIds") };
    case "target.progress":
      return {
        type,
        agentId: agentId(),
        lines: asStringArray(o.lines, "event.lines", (s, f) => asString(s, f, { maxLength: MAX_LINE, allowEmpty: true }), 1000),
        linesCut: asInt(o.linesCut ?? 0, "event.linesCut", 0, Number.MAX_SAFE_INTEGER),
      };
    case "target.result":
      return {
        type,
        agentId: agentId(),
        outcome: asEnum(o.outcome, "event.outcome", ["SUCCEEDED", "FAILED"] as const),
        message: message(),
        exitCode: o.exitCode === null || o.exitCode === undefined ? null : asInt(o.exitCode, "event.exitCode", -1, 255),
        durationMs: asInt(o.durationMs ?? 0, "event.durationMs", 0, Number.MAX_SAFE_INTEGER),
        ...(o.rolledBack === true ? { rolledBack: true } : {}),
      };
    case "target.declined":
      return { type, agentId: agentId(), reason: asString(o.reason, "event.reason", { maxLength: 4096, allowEmpty: true }), ...(o.afterStart === true ? { afterStart: true as const } : {}) };
    case "target.timed_out":
      return { type, agentId: agentId(), phase: asEnum(o.phase, "event.phase", ["delivery", "apply"] as const), message: message() };
    case "target.cancelled":
      return { type, agentId: agentId(), message: message() };
    case "deployment.halted":
      return { type, message: message() };
    case "deployment.cancel_requested":
      return {
        type,
        reason: asString(o.reason, "event.reason", { maxLength: 4096, allowEmpty: true }),
        ...(o.by === undefined ? {} : { by: asString(o.by, "event.by", { maxLength: MAX_IDENTITY_LENGTH }) }),
        ...(o.byVia === undefined ? {} : { byVia: asEnum(o.byVia, "event.byVia", IDENTITY_SOURCES) }),
        ...(o.kill === true ? { kill: true as const } : {}),
        ...(o.revertTo === undefined ? {} : { revertTo: parseRestored(o.revertTo, "event.revertTo") }),
      };
    case "deployment.finished":
      return { type, state: asEnum(o.state, "event.state", ["SUCCEEDED", "FAILED", "CANCELLED"] as const), message: message() };
    case "deployment.paused":
      return { type, reason: asString(o.reason, "event.reason", { maxLength: 4096, allowEmpty: true }), ...actor(o) };
    case "deployment.resumed":
    case "deployment.promoted":
      return { type, ...actor(o) };
    case "deployment.canary_done":
      return { type, message: message() };
    case "agent.rejected_message":
      return {
        type,
        agentId: agentId(),
        subject: asString(o.subject, "event.subject", { maxLength: 1024 }),
        error: asString(o.error, "event.error", { maxLength: 4096, allowEmpty: true }),
      };
    default:
      throw new ValidationError("event.type", `unknown event type ${JSON.stringify(type)}`);
  }
}

/** `by` (required) and `byVia` of an operator's decision. */
function actor(o: Obj): { by: string; byVia?: IdentitySource } {
  return {
    by: asString(o.by, "event.by", { maxLength: MAX_IDENTITY_LENGTH }),
    ...(o.byVia === undefined ? {} : { byVia: asEnum(o.byVia, "event.byVia", IDENTITY_SOURCES) }),
  };
}

export function parseEvent(data: Uint8Array | string): DeployEvent {
  const o = asObject(parseJson(data, "event"), "event");
  if (o.schema !== EVENT_SCHEMA) {
    throw new ValidationError("event.schema", `expected "${EVENT_SCHEMA}", got ${JSON.stringify(o.schema)?.slice(0, 80)}`);
  }
  return {
    schema: EVENT_SCHEMA,
    deploymentId: asToken(o.deploymentId, "event.deploymentId"),
    time: asIsoTime(o.time, "event.time"),
    ...parseEventBody(o),
  };
}

// ---------------------------------------------------------------------------
// Agent registry: deploy_agents/<agent id>, rewritten at every heartbeat.

export interface AgentRecord {
  schema: typeof AGENT_SCHEMA;
  id: string;
  environment: string;
  apps: string[];
  host: string;
  version: string;
  labels: Record<string, string>;
  /** Per app, the release last installed successfully: `<version>-<last 8 of the deployment id>` (names.ts releaseName). */
  currentReleases: Record<string, string>;
  /**
   * Per app, what that release is: the deployment that installed it, its
   * version and artifact. The coordinator compares it with the desired
   * release (same version and artifact: on it) and dates it (deployment ids
   * are time-ordered) to decide whether the agent missed that release.
   * Absent for releases installed by an agent from before it was reported.
   */
  releases?: Record<string, AgentRelease>;
  startedAt: string;
  /**
   * True: this agent's consumer filters its command queue,
   * deploy.cmd.<agent>.queue, and coordinators publish its commands there.
   * Absent (an agent from before the queue, or one whose consumer still had
   * commands on the older subjects at its start): each command on
   * deploy.cmd.<agent>.<deployment>.
   */
  commandQueue?: boolean;
}

export interface AgentRelease {
  /** The release's name, as in currentReleases. */
  release: string;
  deploymentId: string;
  version: string;
  /** The bundle installed; absent when the app's deploy executable ran (executable mode). */
  artifact?: { name: string; digest: string };
}

/**
 * What an agent runs once it has applied `changeset` of deployment
 * `deploymentId`: the agent writes it in its entry, and the coordinator that
 * folds the result notes the same (Registry.noteRelease), so both agree.
 */
export function agentReleaseOf(deploymentId: string, changeset: Changeset): AgentRelease {
  const a = changeset.artifact;
  return {
    release: releaseName(changeset.version, deploymentId),
    deploymentId,
    version: changeset.version,
    ...(a ? { artifact: { name: a.name, digest: a.digest } } : {}),
  };
}

function parseAgentReleases(v: unknown, field: string): Record<string, AgentRelease> {
  const o = asObject(v, field);
  const out: Record<string, AgentRelease> = {};
  for (const [app, r] of Object.entries(o)) {
    asToken(app, `${field} key`);
    const f = `${field}.${app}`;
    const x = asObject(r, f);
    const a = x.artifact === undefined || x.artifact === null ? undefined : asObject(x.artifact, `${f}.artifact`);
    out[app] = {
      release: asString(x.release, `${f}.release`, { maxLength: 256 }),
      deploymentId: asToken(x.deploymentId, `${f}.deploymentId`),
      version: asString(x.version, `${f}.version`, { maxLength: 128 }),
      ...(a ? { artifact: { name: asArtifactName(a.name, `${f}.artifact.name`), digest: asDigest(a.digest, `${f}.artifact.digest`) } } : {}),
    };
  }
  return out;
}

export function parseAgentRecord(data: Uint8Array | string): AgentRecord {
  const o = asObject(parseJson(data, "agent"), "agent");
  if (o.schema !== AGENT_SCHEMA) throw new ValidationError("agent.schema", `expected "${AGENT_SCHEMA}"`);
  return {
    schema: AGENT_SCHEMA,
    id: asAgentId(o.id, "agent.id"),
    environment: asToken(o.environment, "agent.environment"),
    apps: asStringArray(o.apps, "agent.apps", asToken, 1000),
    host: asString(o.host, "agent.host", { maxLength: 256, allowEmpty: true }),
    version: asString(o.version, "agent.version", { maxLength: 64, allowEmpty: true }),
    labels: asStringMap(o.labels ?? {}, "agent.labels"),
    currentReleases: asStringMap(o.currentReleases ?? {}, "agent.currentReleases"),
    ...(o.releases === undefined ? {} : { releases: parseAgentReleases(o.releases, "agent.releases") }),
    startedAt: asIsoTime(o.startedAt, "agent.startedAt"),
    ...(o.commandQueue === true ? { commandQueue: true } : {}),
  };
}

export function encode(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
