// Validation of every gRPC request, in one place. Field names in errors are
// the proto's (snake_case), so a client sees the field it sent.
import { createHash } from "node:crypto";
import type { RollbackInput } from "./releases/rollback.js";
import { RELEASE_STATUSES, type ReleaseStatus } from "./releases/agentReleases.js";
import {
  MAX_NOTE_LENGTH,
  DEPLOYMENT_STATES,
  MAX_SELECTOR_LENGTH,
  ValidationError,
  amountText,
  asObject,
  asString,
  asAgentId,
  asToken,
  asArtifactName,
  asDigest,
  formatSelector,
  parsePercent,
  parseSelector,
  requestKey,
  type Amount,
  type DeploymentState,
  type Obj,
  type PromotedRelease,
  type RestoredRelease,
  type Selector,
  DEFAULT_MAX_PAUSE_MS,
  MAX_FREEZE_REASON,
  MAX_POLICY_REASON,
  checkPolicyRules,
  type PolicyRules,
  MAX_FREEZE_WINDOWS,
  canonicalWindow,
  checkTimeZone,
  MAX_TARGETS,
  TARGET_STATES,
  type TargetState,
} from "../../shared/src/index.js";

const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;

export interface CreateInput {
  requestId: string;
  app: string;
  environment: string;
  /** The artifact's size is filled in from the store when the deployment is created. */
  changeset: { version: string; artifact?: { name: string; digest: string } };
  /** As asked: counts or percentages, resolved against the targets when the deployment is created. */
  strategy: StrategyInput;
  /** Explicit targets; empty means every live agent of app and environment (or those the selector matches). */
  targets: string[];
  /** A label selector (never together with targets): the parsed requirements and their canonical text. */
  selector?: { text: string; requirements: Selector };
  /**
   * The client's free-text note (request field requested_by): recorded and
   * shown, never taken as who asked: that is the authenticated identity,
   * which createDeployment is given apart.
   */
  note: string;
  /**
   * Set by convergence only (never from a gRPC request): the deployment
   * whose desired release this one brings its one target to.
   */
  convergesTo?: string;
  /** Set by an automatic revert only: the FAILED deployment it reverts. */
  reverts?: string;
  /** Set by a revert or RollbackRelease only: the release it restores (its changeset). */
  restores?: RestoredRelease;
  /**
   * promote_from: the environment whose desired release this deploys. The
   * changeset is empty until releases/promote.ts resolves it (and sets
   * promotedFrom); the hash covers this name, not what it resolved to.
   */
  promoteFrom?: string;
  /**
   * promote_min_soak: the least time since promote_from's desired release
   * succeeded there (releases/promote.ts). Not part of the request's hash:
   * a gate on the release, not what is deployed.
   */
  promoteMinSoakMs?: number;
  /** Set by releases/promote.ts: the release promote_from resolved to (its changeset). */
  promotedFrom?: PromotedRelease;
  /**
   * Why this request deploys to a frozen environment anyway
   * (freeze_override_reason): recorded with the freeze in the spec. Not part
   * of the request's hash: a retry with or without it is the same request.
   */
  freezeOverride?: string;
  /**
   * Set by an automatic revert only: explicit targets that are registered
   * but not live are recorded offline (SKIPPED), not refused, and none
   * need be live: the revert must exist whatever became of the fleet.
   */
  offlineAllowed?: boolean;
}

export interface StrategyInput {
  maxConcurrency: Amount;
  maxFailures: Amount;
  deliveryTimeoutMs: number;
  applyTimeoutMs: number;
  /** The canary wave, as asked; absent (or a count of 0): none. */
  canary?: Amount;
  canarySoakMs?: number;
  /** Absent: DEFAULT_MAX_PAUSE_MS. */
  maxPauseMs?: number;
  autoRevert?: boolean;
  /** Leave out the targets already on the changeset (resolveRequest.ts currentOf). */
  onlyOutdated?: boolean;
  ignoreStopFailures?: boolean;
  /** Bake time per succeeded target (Strategy.soakMs); absent: none. */
  soakMs?: number;
}

/**
 * google.protobuf.Duration (or Timestamp) as ms; undefined when unset.
 * `invalid` is the error for parts that are not numbers, or negative
 * (seconds may be negative when `signed`).
 */
function protoMs(v: unknown, field: string, invalid: string, signed = false): number | undefined {
  if (v === undefined || v === null) return undefined;
  const o = asObject(v, field);
  const seconds = Number(o.seconds ?? 0);
  const nanos = Number(o.nanos ?? 0);
  if (!Number.isFinite(seconds) || !Number.isFinite(nanos) || nanos < 0 || (!signed && seconds < 0)) throw new ValidationError(field, invalid);
  return Math.round(seconds * 1000 + nanos / 1e6);
}

export interface Defaults {
  deliveryTimeoutMs: number;
  applyTimeoutMs: number;
}

function durationMs(v: unknown, field: string, dflt: number): number {
  const ms = protoMs(v, field, "must be a positive duration");
  if (ms === undefined) return dflt;
  if (ms < 1) throw new ValidationError(field, "must be at least 1 ms");
  if (ms > MAX_TIMEOUT_MS) throw new ValidationError(field, "must be at most 7 days");
  return ms;
}

/** The longest a freeze may last when it is given an end (a year: a freeze without an end lasts until unfrozen). */
export const MAX_FREEZE_MS = 366 * 24 * 3600 * 1000;

export interface FreezeInput {
  environment: string;
  /** A named freeze; absent: the environment's unnamed one. */
  name?: string;
  reason: string;
  /** Weekly windows (canonical text) it is in force in; absent: all the time. */
  windows?: string[];
  timeZone?: string;
  /** When it ends by itself, on the servers' clock; absent: when unfrozen. */
  untilMs?: number;
}

/** A freeze's name (FreezeEnvironment, UnfreezeEnvironment); empty or unset: the environment's unnamed freeze. */
const freezeNameOf = (r: Obj): string | undefined => (r.name === undefined || r.name === "" ? undefined : asToken(r.name, "name"));

/** UnfreezeEnvironment: the environment, and the freeze's name (empty: the unnamed one). */
export function validateUnfreeze(req: unknown): { environment: string; name?: string } {
  const r = asObject(req ?? {}, "request");
  const environment = asToken(r.environment ?? "", "environment");
  const name = freezeNameOf(r);
  return { environment, ...(name ? { name } : {}) };
}

/** FreezeEnvironment: a reason is required (everyone refused sees it); a duration or an end, not both, neither: until unfrozen. */
export function validateFreeze(req: unknown, nowMs: number): FreezeInput {
  const r = asObject(req ?? {}, "request");
  const environment = asToken(r.environment ?? "", "environment");
  const reason = asString(r.reason ?? "", "reason", { maxLength: MAX_FREEZE_REASON });
  if (reason.trim() === "") throw new ValidationError("reason", "is required: everyone whose deployment is refused reads it");
  const duration = protoMs(r.duration, "duration", "must be a valid duration", true);
  const until = protoMs(r.until, "until", "must be a valid time", true);
  if (duration !== undefined && until !== undefined) throw new ValidationError("duration", "give a duration or an end (until), not both");
  if (duration !== undefined && duration <= 0) throw new ValidationError("duration", "must be positive");
  if (until !== undefined && until <= nowMs) throw new ValidationError("until", `must be in the future (it is ${new Date(until).toISOString()}, now is ${new Date(nowMs).toISOString()})`);
  const untilMs = duration !== undefined ? nowMs + duration : until;
  if (untilMs !== undefined && untilMs - nowMs > MAX_FREEZE_MS) throw new ValidationError(duration !== undefined ? "duration" : "until", "must end within 366 days (leave it unset for a freeze until unfrozen)");
  const name = freezeNameOf(r);
  const rawWindows = r.windows ?? [];
  if (!Array.isArray(rawWindows)) throw new ValidationError("windows", "must be a list");
  if (rawWindows.length > MAX_FREEZE_WINDOWS) throw new ValidationError("windows", `must have at most ${MAX_FREEZE_WINDOWS} entries`);
  const windows = rawWindows.map((w, i) => canonicalWindow(asString(w, `windows[${i}]`, { maxLength: 64 }), `windows[${i}]`));
  const timeZone = asString(r.timeZone ?? "", "time_zone", { maxLength: 64, allowEmpty: true });
  if (timeZone !== "") {
    if (windows.length === 0) throw new ValidationError("time_zone", "only with windows (a freeze without windows holds all the time)");
    checkTimeZone(timeZone);
  }
  return {
    environment,
    ...(name ? { name } : {}),
    reason,
    ...(untilMs !== undefined ? { untilMs } : {}),
    ...(windows.length > 0 ? { windows, ...(timeZone ? { timeZone } : {}) } : {}),
  };
}

/** SetEnvironmentPolicy: the environment, the app (none: every app's), the rules (none: clear the policy) and a reason, which is required either way. */
export function validatePolicy(req: unknown): { environment: string; app: string | undefined; rules: PolicyRules; reason: string } {
  const r = asObject(req ?? {}, "request");
  const environment = asToken(r.environment ?? "", "environment");
  // proto3: an empty string is none.
  const app = r.app === undefined || r.app === null || r.app === "" ? undefined : asToken(r.app, "app");
  const reason = asString(r.reason ?? "", "reason", { maxLength: MAX_POLICY_REASON });
  if (reason.trim() === "") throw new ValidationError("reason", "is required: everyone whose deployment the policy refuses reads it, and so does whoever reads its history");
  const promoteFrom = r.promoteFrom === undefined || r.promoteFrom === "" ? undefined : asToken(r.promoteFrom, "promote_from");
  const minSoakMs = protoMs(r.minSoak, "min_soak", "must be a positive duration");
  if (r.requireCanary !== undefined && r.requireCanary !== null && typeof r.requireCanary !== "boolean") throw new ValidationError("require_canary", "must be true or false");
  const rules: PolicyRules = {
    ...(promoteFrom !== undefined ? { promoteFrom } : {}),
    ...(minSoakMs !== undefined ? { minSoakMs } : {}),
    ...(r.requireCanary === true ? { requireCanary: true } : {}),
  };
  checkPolicyRules(environment, rules);
  return { environment, app, rules, reason };
}

function optionalCount(v: unknown, field: string, dflt: number, min: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ValidationError(field, "must be an integer");
  if (v < min) throw new ValidationError(field, `must be at least ${min}`);
  if (v > MAX_TARGETS) throw new ValidationError(field, `must be at most ${MAX_TARGETS}`);
  return v;
}

/**
 * A count (`field`, proto3 optional: absent is the default) or a percentage
 * (`field`_percent, a string: empty is unset), never both.
 */
function amount(count: unknown, percent: unknown, field: string, dflt: number, min: number): Amount {
  const pct = asString(percent ?? "", `${field}_percent`, { maxLength: 64, allowEmpty: true });
  if (pct === "") return { count: optionalCount(count, field, dflt, min) };
  if (count !== undefined && count !== null) throw new ValidationError(`${field}_percent`, `give ${field} or ${field}_percent, not both`);
  return { percent: parsePercent(pct, `${field}_percent`, min) };
}

/** The canary wave: a count (0 is none) or a percentage, and its soak time (only with a wave). */
function canaryOf(st: Obj): Pick<StrategyInput, "canary" | "canarySoakMs"> {
  const canary = amount(st.canary, st.canaryPercent, "strategy.canary", 0, 0);
  const none = "count" in canary && canary.count === 0;
  if ("percent" in canary && canary.percent === 0) throw new ValidationError("strategy.canary_percent", "must be from 1% to 100% (leave it empty for no canary wave)");
  const soak = st.canarySoak === undefined || st.canarySoak === null ? undefined : durationMs(st.canarySoak, "strategy.canary_soak", 0);
  if (none && soak !== undefined) throw new ValidationError("strategy.canary_soak", "needs a canary wave (strategy.canary or strategy.canary_percent)");
  return { ...(none ? {} : { canary }), ...(soak === undefined ? {} : { canarySoakMs: soak }) };
}

export function validateCreate(req: unknown, defaults: Defaults): CreateInput {
  const r = asObject(req ?? {}, "request");
  const requestId = asString(r.requestId ?? "", "request_id", { maxLength: 256 });
  if (!/^[\x21-\x7e]+$/.test(requestId)) throw new ValidationError("request_id", "must be printable ASCII without spaces");
  const app = asToken(r.app ?? "", "app");
  const environment = asToken(r.environment ?? "", "environment");
  // proto3: an empty string is none.
  const promoteFrom = r.promoteFrom === undefined || r.promoteFrom === null || r.promoteFrom === "" ? undefined : asToken(r.promoteFrom, "promote_from");
  if (promoteFrom !== undefined) {
    if (r.changeset !== undefined && r.changeset !== null) throw new ValidationError("promote_from", "give a changeset or promote_from, not both: promote_from deploys that environment's desired release as it is");
    if (promoteFrom === environment) throw new ValidationError("promote_from", `is the environment deployed to (${environment}): name the environment whose desired release to deploy here`);
  } else if (r.changeset === undefined || r.changeset === null) {
    throw new ValidationError("changeset", "is required (or promote_from, to deploy another environment's desired release)");
  }
  const minSoak = r.promoteMinSoak === undefined || r.promoteMinSoak === null ? undefined : durationMs(r.promoteMinSoak, "promote_min_soak", 0);
  if (minSoak !== undefined && promoteFrom === undefined) throw new ValidationError("promote_min_soak", "needs promote_from: it is how long the release promoted must have been the desired release there");
  const cs = promoteFrom === undefined ? asObject(r.changeset, "changeset") : {};
  const version = promoteFrom === undefined ? asString(cs.version ?? "", "changeset.version", { maxLength: 128 }) : "";
  if (promoteFrom === undefined && !/^[\x21-\x7e]+$/.test(version)) throw new ValidationError("changeset.version", "must be printable ASCII without spaces");
  let artifact: { name: string; digest: string } | undefined;
  if (cs.artifact !== undefined && cs.artifact !== null) {
    const a = asObject(cs.artifact, "changeset.artifact");
    artifact = { name: asArtifactName(a.name, "changeset.artifact.name"), digest: asDigest(a.digest, "changeset.artifact.digest") };
  }
  const st = r.strategy === undefined || r.strategy === null ? {} : asObject(r.strategy, "strategy");
  const strategy: StrategyInput = {
    maxConcurrency: amount(st.maxConcurrency, st.maxConcurrencyPercent, "strategy.max_concurrency", 1, 1),
    maxFailures: amount(st.maxFailures, st.maxFailuresPercent, "strategy.max_failures", 0, 0),
    deliveryTimeoutMs: durationMs(st.deliveryTimeout, "strategy.delivery_timeout", defaults.deliveryTimeoutMs),
    applyTimeoutMs: durationMs(st.applyTimeout, "strategy.apply_timeout", defaults.applyTimeoutMs),
    ...canaryOf(st),
    maxPauseMs: durationMs(st.maxPause, "strategy.max_pause", DEFAULT_MAX_PAUSE_MS),
    autoRevert: st.autoRevert === true,
    onlyOutdated: st.onlyOutdated === true,
    ignoreStopFailures: st.ignoreStopFailures === true,
    ...(st.soak === undefined || st.soak === null ? {} : { soakMs: durationMs(st.soak, "strategy.soak", 0) }),
  };
  const rawTargets = r.targets ?? [];
  if (!Array.isArray(rawTargets)) throw new ValidationError("targets", "must be a list");
  if (rawTargets.length > MAX_TARGETS) throw new ValidationError("targets", `must have at most ${MAX_TARGETS} entries`);
  const targets = rawTargets.map((t, i) => asAgentId(t, `targets[${i}]`));
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    if (seen.has(t)) throw new ValidationError(`targets[${i}]`, `"${t}" is listed twice`);
    seen.add(t);
  });
  const note = validateNote(r.requestedBy);
  // proto3: an empty string is no selector.
  const selectorText = asString(r.selector ?? "", "selector", { maxLength: MAX_SELECTOR_LENGTH, allowEmpty: true });
  let selector: CreateInput["selector"];
  if (selectorText !== "") {
    if (targets.length > 0) throw new ValidationError("selector", "give targets or a selector, not both");
    const requirements = parseSelector(selectorText, "selector");
    selector = { text: formatSelector(requirements), requirements };
  }
  const freezeOverride = asString(r.freezeOverrideReason ?? "", "freeze_override_reason", { maxLength: MAX_FREEZE_REASON, allowEmpty: true });
  return {
    requestId,
    app,
    environment,
    changeset: artifact ? { version, artifact } : { version },
    strategy,
    targets,
    ...(selector ? { selector } : {}),
    note,
    ...(freezeOverride.trim() !== "" ? { freezeOverride } : {}),
    ...(promoteFrom !== undefined ? { promoteFrom } : {}),
    ...(minSoak !== undefined ? { promoteMinSoakMs: minSoak } : {}),
  };
}

/** RollbackRelease: its request id, pair, strategy and note are validated as CreateDeployment's. */
export function validateRollback(req: unknown, defaults: Defaults): RollbackInput {
  const r = asObject(req ?? {}, "request");
  const input = validateCreate({ requestId: r.requestId, app: r.app, environment: r.environment, changeset: { version: "rollback" }, strategy: r.strategy, requestedBy: r.requestedBy }, defaults);
  const to = r.to === undefined || r.to === null || r.to === "" ? undefined : asString(r.to, "to", { maxLength: 128 });
  return { requestId: input.requestId, app: input.app, environment: input.environment, strategy: input.strategy, note: input.note, ...(to === undefined ? {} : { to }) };
}

/**
 * Hash of everything in the request but its id, after defaults: "the same
 * body" means the same hash, so a retry that spells a default out (or leaves
 * it out) is still the same request. The caller's identity is not part of
 * the body (createDeployment compares it apart, so this hash, and with it a
 * retry across an upgrade, stays what it was); the note is, as it always was.
 */
export function requestHash(input: CreateInput): string {
  const a = input.changeset.artifact;
  const st = input.strategy;
  // Counts hash as the numbers they always did, so a retry across an upgrade
  // of a request accepted before it is still the same request; a percentage
  // hashes as its text ("10%"), never equal to a count.
  const amount = (x: Amount): number | string => ("count" in x ? x.count : amountText(x));
  const strategy: Record<string, unknown> = { maxConcurrency: amount(st.maxConcurrency), maxFailures: amount(st.maxFailures), deliveryTimeoutMs: st.deliveryTimeoutMs, applyTimeoutMs: st.applyTimeoutMs };
  // Later fields only when they differ from their default, so a request
  // accepted before they existed hashes as it did.
  if (st.canary) strategy["canary"] = amount(st.canary);
  if (st.canarySoakMs !== undefined) strategy["canarySoakMs"] = st.canarySoakMs;
  if (st.maxPauseMs !== undefined && st.maxPauseMs !== DEFAULT_MAX_PAUSE_MS) strategy["maxPauseMs"] = st.maxPauseMs;
  if (st.autoRevert) strategy["autoRevert"] = true;
  if (st.onlyOutdated) strategy["onlyOutdated"] = true;
  if (st.ignoreStopFailures) strategy["ignoreStopFailures"] = true;
  if (st.soakMs !== undefined) strategy["soakMs"] = st.soakMs;
  // A promotion hashes as the environment it names, not the release that resolved to (it moves).
  const promoted = input.promoteFrom !== undefined;
  const body: unknown[] = [input.app, input.environment, promoted ? "" : input.changeset.version, a && !promoted ? [a.name, a.digest] : null, strategy, input.targets, input.note];
  // Only when given, for the same reason; its canonical text, so spacing or order is the same request.
  if (input.selector) body.push({ selector: input.selector.text });
  if (input.convergesTo) body.push({ convergesTo: input.convergesTo });
  if (input.reverts) body.push({ reverts: input.reverts });
  if (input.restores) body.push({ restores: input.restores.deploymentId });
  if (promoted) body.push({ promoteFrom: input.promoteFrom });
  return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

/** KV key (deploy_deployments) of the mapping of a request id (free text, so hashed) to its deployment. */
export function requestKeyOf(requestId: string): string {
  return requestKey(createHash("sha256").update(requestId).digest("hex").slice(0, 40));
}

export function validateDeploymentId(v: unknown, field = "deployment_id"): string {
  return asToken(v ?? "", field);
}

export interface ListInput {
  app?: string;
  environment?: string;
  state?: DeploymentState;
  /** Only deployments this agent was a target of. */
  agentId?: string;
  pageSize: number;
  pageToken?: string;
}

export function validateList(req: unknown): ListInput {
  const r = asObject(req ?? {}, "request");
  const out: ListInput = { pageSize: 20 };
  if (r.app) out.app = asToken(r.app, "app");
  if (r.environment) out.environment = asToken(r.environment, "environment");
  if (r.state && r.state !== "DEPLOYMENT_STATE_UNSPECIFIED") {
    const raw = asString(r.state, "state", { maxLength: 64 });
    const s = raw.replace(/^DEPLOYMENT_STATE_/, "");
    if (!(DEPLOYMENT_STATES as readonly string[]).includes(s)) throw new ValidationError("state", `unknown state ${raw}`);
    out.state = s as DeploymentState;
  }
  if (r.pageSize !== undefined && r.pageSize !== 0) {
    if (typeof r.pageSize !== "number" || r.pageSize < 1 || r.pageSize > 200) throw new ValidationError("page_size", "must be between 1 and 200");
    out.pageSize = r.pageSize;
  }
  if (r.agentId) out.agentId = asAgentId(r.agentId, "agent_id");
  if (r.pageToken) out.pageToken = asToken(r.pageToken, "page_token");
  return out;
}

/** GetDeployment's page of targets (convert.ts targetPage). */
export interface TargetPageInput {
  pageSize: number;
  /** Index in the rollout order (spec.targets) to start from. */
  start: number;
  state?: TargetState;
}

/** Targets a page holds unless asked for fewer or more: every target of a deployment of up to this many, as before paging. */
export const DEFAULT_TARGET_PAGE = 1000;
export const MAX_TARGET_PAGE = 10_000;

export function validateTargetPage(req: unknown): TargetPageInput {
  const r = asObject(req ?? {}, "request");
  const out: TargetPageInput = { pageSize: DEFAULT_TARGET_PAGE, start: 0 };
  if (r.pageSize !== undefined && r.pageSize !== 0) {
    if (typeof r.pageSize !== "number" || !Number.isInteger(r.pageSize) || r.pageSize < 1 || r.pageSize > MAX_TARGET_PAGE) {
      throw new ValidationError("page_size", `must be between 1 and ${MAX_TARGET_PAGE}`);
    }
    out.pageSize = r.pageSize;
  }
  if (r.pageToken !== undefined && r.pageToken !== "") {
    const t = asString(r.pageToken, "page_token", { maxLength: 32 });
    // The token is the index of the next target in rollout order ("t<index>").
    const m = /^t(0|[1-9][0-9]{0,8})$/.exec(t);
    if (!m) throw new ValidationError("page_token", "is not a token GetDeployment returned (next_page_token)");
    out.start = Number(m[1]);
  }
  if (r.targetState !== undefined && r.targetState !== "TARGET_STATE_UNSPECIFIED" && r.targetState !== 0) {
    const raw = asString(r.targetState, "target_state", { maxLength: 64 });
    const st = raw.replace(/^TARGET_STATE_/, "");
    if (!(TARGET_STATES as readonly string[]).includes(st)) throw new ValidationError("target_state", `unknown state ${raw}`);
    out.state = st as TargetState;
  }
  return out;
}

export function validateAfterSequence(v: unknown): number {
  if (v === undefined || v === null || v === "") return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ValidationError("after_sequence", "must be a non-negative integer");
  return n;
}

export function validateAgentFilter(req: unknown): { app?: string; environment?: string } {
  const r = asObject(req ?? {}, "request");
  const out: { app?: string; environment?: string } = {};
  if (r.app) out.app = asToken(r.app, "app");
  if (r.environment) out.environment = asToken(r.environment, "environment");
  return out;
}

/** ListAgents: the filter, the label selector and release status the agents must match, and the page. */
export interface ListAgentsInput {
  filter: { app?: string; environment?: string };
  selector?: Selector;
  /** A ReleaseStatus without its prefix. */
  status?: ReleaseStatus;
  pageSize: number;
  /** The id of the last agent of the previous page. */
  pageToken?: string;
}

export const LIST_AGENTS_DEFAULT_PAGE = 1000;
export const LIST_AGENTS_MAX_PAGE = 10_000;

export function validateListAgents(req: unknown): ListAgentsInput {
  const r = asObject(req ?? {}, "request");
  const out: ListAgentsInput = { filter: validateAgentFilter(req), pageSize: LIST_AGENTS_DEFAULT_PAGE };
  const selectorText = asString(r.selector ?? "", "selector", { maxLength: MAX_SELECTOR_LENGTH, allowEmpty: true });
  if (selectorText !== "") out.selector = parseSelector(selectorText, "selector");
  if (r.status && r.status !== "RELEASE_STATUS_UNSPECIFIED") {
    const raw = asString(r.status, "status", { maxLength: 64 });
    const s = raw.replace(/^RELEASE_STATUS_/, "");
    if (!(RELEASE_STATUSES as readonly string[]).includes(s)) throw new ValidationError("status", `unknown release status ${raw}`);
    out.status = s as ReleaseStatus;
  }
  if (r.pageSize !== undefined && r.pageSize !== 0) {
    if (typeof r.pageSize !== "number" || !Number.isInteger(r.pageSize) || r.pageSize < 1 || r.pageSize > LIST_AGENTS_MAX_PAGE) {
      throw new ValidationError("page_size", `must be between 1 and ${LIST_AGENTS_MAX_PAGE}`);
    }
    out.pageSize = r.pageSize;
  }
  if (r.pageToken !== undefined && r.pageToken !== "") out.pageToken = asAgentId(r.pageToken, "page_token");
  return out;
}

/** CordonAgent, UncordonAgent: the agent's id, required. */
export function validateAgentId(v: unknown): string {
  if (v === undefined || v === null || v === "") throw new ValidationError("agent_id", "is required");
  return asAgentId(v, "agent_id");
}

/** GetRelease: both required. */
export function validateReleaseRequest(req: unknown): { app: string; environment: string } {
  const r = asObject(req ?? {}, "request");
  return { app: asToken(r.app ?? "", "app"), environment: asToken(r.environment ?? "", "environment") };
}

/** A client's free-text note (a request's requested_by). */
export function validateNote(v: unknown): string {
  return asString(v ?? "", "requested_by", { maxLength: MAX_NOTE_LENGTH, allowEmpty: true });
}

export function validateReason(v: unknown): string {
  return asString(v ?? "", "reason", { maxLength: 1024, allowEmpty: true });
}
