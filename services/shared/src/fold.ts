// The projection: a deployment's current state is a fold of its events in
// stream order. This function is the only place state transitions are
// defined; the coordinator, the agent's claim check, GetDeployment and the
// tests all use it, so folding the stream and reading KV cannot disagree.
//
// Times come from the stream (the server's clock when it stored the event),
// not from the publisher, so agents with skewed clocks cannot stretch or
// shrink a timeout. One exception: a deployment's createdAt is the time its
// creating coordinator wrote into deployment.created (only a coordinator's
// created event is folded), so CreateDeployment answers with the record
// folded from the event it holds, without reading it back for the stream's
// time (one round trip). No timeout counts from createdAt.
import { DEPLOYMENT_SCHEMA, COORDINATOR_SOURCE, TARGETS_SOURCE } from "./names.js";
import {
  isTerminalDeployment,
  isTerminalTarget,
  type EventBody,
  type DeployEvent,
  type DeploymentSpec,
  type DeploymentState,
  type RestoredRelease,
  type TargetState,
} from "./schemas.js";

/** Start of the message of a target that already ran the changeset when its deployment was created with strategy.only_outdated (SKIPPED from the start). */
export const ALREADY_CURRENT = "already on";
/** Start of the message of a target that was registered but not live when its deployment was created (SKIPPED from the start). */
export const OFFLINE_AT_CREATION = "offline at creation";

const AGENT_EVENTS: ReadonlySet<string> = new Set(["target.started", "target.progress", "target.result", "target.declined", "agent.rejected_message"]);

export interface TargetRecord {
  state: TargetState;
  message: string;
  dispatchedAt?: string;
  startedAt?: string;
  /** Sequence of the target.started event that won the target's race. */
  startedSeq?: number;
  /**
   * Sequence of the last event on the target's own subject
   * (deploy.evt.<deployment>.<agent>), read or not: the compare-and-set
   * point of the per-target race (js/raceForTarget.ts).
   */
  subjectSeq?: number;
  finishedAt?: string;
  lastOutput?: string;
  lateResult?: string;
  /** Failed after the release switch and switched back to the previous release. */
  rolledBack?: boolean;
}

export interface DeploymentRecord {
  schema: typeof DEPLOYMENT_SCHEMA;
  spec: DeploymentSpec;
  state: DeploymentState;
  message: string;
  cancelRequested: boolean;
  /** A cancel with kill_running: the applies in flight are being killed (their agents look for it while they run). */
  killRequested?: boolean;
  /** A cancel asked with revert: the release the targets it changed are brought back to once it is CANCELLED (revertToOf). */
  cancelRevertTo?: RestoredRelease;
  /** Who asked for the cancel (its event's `by`: the authenticated identity), once one is requested. */
  cancelledBy?: string;
  halted: boolean;
  /** Dispatching stopped by deployment.paused (until deployment.resumed): who, and why. */
  paused?: { by: string; reason: string; at: string };
  /** Every canary SUCCEEDED (deployment.canary_done): when; the rollout waits for a promote. */
  canaryDoneAt?: string;
  /** Who promoted the canary wave (deployment.promoted); the rollout goes on to every target. */
  promotedBy?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /**
   * Sequence of the deployment.finished event (absent in projections from
   * before it was kept: the last coordinator event is that one then, as no
   * coordinator decides anything after it).
   */
  finishedSeq?: number;
  /** Last event sequence folded into this record. */
  lastSeq: number;
  /** Last sequence on deploy.evt.<id>.coordinator: the compare-and-set point for coordinator decisions. */
  lastCoordinatorSeq: number;
  targets: Record<string, TargetRecord>;
}

/** An event as read back from DEPLOY_EVENTS. */
export interface StoredEvent {
  seq: number;
  /** Server time the stream stored it, ISO-8601. */
  time: string;
  /** Last subject token: "coordinator" or the agent id. */
  source: string;
  event: DeployEvent;
}

export interface FoldResult {
  record: DeploymentRecord | undefined;
  /** Why the event changed nothing, when it did not. */
  ignored?: string;
}

function target(rec: DeploymentRecord, agentId: string): TargetRecord | undefined {
  return Object.hasOwn(rec.targets, agentId) ? rec.targets[agentId] : undefined;
}

/**
 * Folds one event into `rec`, mutating it (a rollout of 10,000 targets folds
 * 40,000 events; copying the record each time would be quadratic).
 */
/**
 * A large deployment's target chunks (deployment.targets) read before its
 * created event, by stream sequence: whoever folds a deployment from its
 * first event passes one (empty) map and the same map for every event, and
 * deployment.created takes the chunks it lists from it. Empty for a
 * deployment whose targets are in its created event.
 */
export type HeldChunks = Map<number, { agentIds: string[]; offline?: Record<string, string>; current?: Record<string, string> }>;

/**
 * The spec of a created event with its chunked targets filled in from
 * `held`, or why it cannot be (a chunk not read, a count that does not add
 * up: a created event no creator writes).
 */
export function assembleSpec(spec: DeploymentSpec, held: HeldChunks | undefined): DeploymentSpec | string {
  if (spec.targetChunks === undefined) return spec;
  const targets: string[] = [];
  const offline: Record<string, string> = {};
  const current: Record<string, string> = {};
  for (const seq of spec.targetChunks) {
    const c = held?.get(seq);
    if (!c) return `its target chunk at sequence ${seq} was not read`;
    for (const id of c.agentIds) targets.push(id);
    if (c.offline) Object.assign(offline, c.offline);
    if (c.current) Object.assign(current, c.current);
  }
  if (targets.length !== spec.targetCount) return `its target chunks hold ${targets.length} targets, not targetCount ${spec.targetCount}`;
  if (new Set(targets).size !== targets.length) return "its target chunks repeat a target";
  return {
    ...spec,
    targets,
    ...(Object.keys(offline).length > 0 ? { offlineTargets: offline } : {}),
    ...(Object.keys(current).length > 0 ? { currentTargets: current } : {}),
  };
}

export function foldEvent(rec: DeploymentRecord | undefined, se: StoredEvent, held?: HeldChunks): FoldResult {
  const e = se.event;
  if (rec === undefined) {
    if (e.type === "deployment.targets" && se.source === TARGETS_SOURCE) {
      held?.set(se.seq, { agentIds: e.agentIds, ...(e.offline ? { offline: e.offline } : {}), ...(e.current ? { current: e.current } : {}) });
      return { record: undefined, ignored: "target chunk held until its deployment.created" };
    }
    if (e.type !== "deployment.created") return { record: undefined, ignored: `${e.type} before deployment.created` };
    if (se.source !== COORDINATOR_SOURCE) return { record: undefined, ignored: `deployment.created from ${se.source}` };
    const spec = assembleSpec(e.spec, held);
    if (typeof spec === "string") return { record: undefined, ignored: `deployment.created: ${spec}` };
    held?.clear();
    const targets: Record<string, TargetRecord> = {};
    for (const id of spec.targets) targets[id] = { state: "PENDING", message: "" };
    // Registered but not live when the deployment was created: a target all
    // the same, recorded as skipped with the reason, never dropped silently.
    for (const [id, lastHeartbeat] of Object.entries(spec.offlineTargets ?? {})) {
      if (targets[id]) targets[id] = { state: "SKIPPED", message: `${OFFLINE_AT_CREATION}: last heartbeat ${lastHeartbeat}`, finishedAt: e.time };
    }
    // Already on this changeset (strategy.only_outdated): done before it began.
    for (const [id, release] of Object.entries(spec.currentTargets ?? {})) {
      if (targets[id]?.state === "PENDING") targets[id] = { state: "SKIPPED", message: `${ALREADY_CURRENT} ${release}`, finishedAt: e.time };
    }
    const record: DeploymentRecord = {
      schema: DEPLOYMENT_SCHEMA,
      spec,
      state: "PENDING",
      message: "",
      cancelRequested: false,
      halted: false,
      createdAt: e.time,
      updatedAt: e.time,
      lastSeq: se.seq,
      lastCoordinatorSeq: se.source === COORDINATOR_SOURCE ? se.seq : 0,
      targets,
    };
    // The first dispatch, decided with the creation: as a targets.dispatched
    // would fold, at the event's own time (as createdAt: whoever folds it,
    // from the stream or its creator from the event in hand, gets the same).
    if (e.dispatched !== undefined) dispatchAll(record, e.dispatched, e.time);
    return { record };
  }
  if (se.seq <= rec.lastSeq) return { record: rec, ignored: `sequence ${se.seq} already folded` };
  moveSeqs(rec, se);
  const ignored = apply(rec, se);
  if (ignored === undefined) rec.updatedAt = se.time;
  return ignored === undefined ? { record: rec } : { record: rec, ignored };
}

/**
 * An event that could not be read changes nothing but the sequence
 * bookkeeping, which moves past it: the record has seen it, and the next
 * compare-and-set on the coordinator subject expects it. (Left behind, every
 * coordinator append would conflict for ever: cancel answered OK without
 * cancelling, the lock was never released, the deployment never finished.)
 */
export function skipUnreadable(rec: DeploymentRecord | undefined, se: { seq: number; source: string }): void {
  if (rec === undefined || se.seq <= rec.lastSeq) return;
  moveSeqs(rec, se);
}

/** The sequence bookkeeping of an event read or not: the record's, its subject's. */
function moveSeqs(rec: DeploymentRecord, se: { seq: number; source: string }): void {
  rec.lastSeq = se.seq;
  if (se.source === COORDINATOR_SOURCE) rec.lastCoordinatorSeq = se.seq;
  else {
    const t = target(rec, se.source);
    if (t) t.subjectSeq = se.seq;
  }
}

/** A cancelled deployment's message, and its targets': "cancelled: <reason>" (coordinator/rollout/plan.ts reads the reason back from a target's). */
export const cancelMessage = (reason: string): string => (reason ? `cancelled: ${reason}` : "cancelled");

/**
 * Decisions a coordinator appends on a target's own subject (the
 * per-target race): a delivery timeout or a cancel of a DISPATCHED target.
 */
export function isRaceDecision(e: EventBody): boolean {
  return (e.type === "target.timed_out" && e.phase === "delivery") || e.type === "target.cancelled";
}

/**
 * A dispatch of `ids`, or why it had no effect. A deployment's first
 * dispatch starts it (plan.ts appends no deployment.started before it);
 * with no target dispatched, it stays PENDING. One decision for many
 * targets (fan-out: one compare-and-set append instead of one per target):
 * each target is checked as a single dispatch would be, and the dispatch
 * has no effect only if none applied (decided by compare-and-set on a
 * current view, all or none apply in practice).
 */
function dispatchAll(rec: DeploymentRecord, ids: string[], time: string): string | undefined {
  const starting = rec.state === "PENDING" && !rec.cancelRequested;
  if (starting) rec.state = "RUNNING";
  const why: string[] = [];
  for (const agentId of ids) {
    const no = dispatch(rec, agentId, time);
    if (no !== undefined) why.push(ids.length === 1 ? no : `${agentId}: ${no}`);
  }
  if (why.length < ids.length) return undefined;
  if (starting) rec.state = "PENDING";
  return why.slice(0, 5).join("; ") + (why.length > 5 ? `; and ${why.length - 5} more` : "");
}

/** PENDING → DISPATCHED, or why not. */
function dispatch(rec: DeploymentRecord, agentId: string, time: string): string | undefined {
  const t = target(rec, agentId);
  if (!t) return `${agentId} is not a target`;
  if (rec.state !== "RUNNING" || rec.cancelRequested || rec.halted || rec.paused) return "deployment is not dispatching";
  if ((rec.spec.strategy.canary ?? 0) > 0 && rec.promotedBy === undefined && !canaryTargetsOf(rec).includes(agentId)) {
    return "only the canary wave is dispatched before a promote";
  }
  if (t.state !== "PENDING") return `target is ${t.state}`;
  moveTarget(rec, agentId, t, "DISPATCHED");
  t.dispatchedAt = time;
  t.message = "";
  return undefined;
}

function apply(rec: DeploymentRecord, se: StoredEvent): string | undefined {
  const e = se.event;
  const terminal = isTerminalDeployment(rec.state);
  // Who may say what: decisions come only from coordinators, reports only
  // from the agent they are about (subject deploy.evt.<id>.<agent>).
  if (AGENT_EVENTS.has(e.type)) {
    if (!("agentId" in e) || se.source !== e.agentId) return `${e.type} from ${se.source} about another agent`;
  } else if (isRaceDecision(e)) {
    // On the coordinator subject (before the per-target race) or on the target's own.
    if (se.source !== COORDINATOR_SOURCE && (!("agentId" in e) || se.source !== e.agentId)) return `${e.type} from ${se.source} about another agent`;
  } else if (se.source !== COORDINATOR_SOURCE && !(e.type === "deployment.targets" && se.source === TARGETS_SOURCE)) {
    return `${e.type} may only come from a coordinator, not ${se.source}`;
  }
  switch (e.type) {
    case "deployment.created":
      return "deployment already created";
    case "deployment.targets":
      return "target chunk after deployment.created: not part of it";
    case "deployment.started":
      if (rec.state !== "PENDING") return `deployment is ${rec.state}`;
      rec.state = "RUNNING";
      return undefined;
    case "target.dispatched":
    case "targets.dispatched":
      return dispatchAll(rec, e.type === "target.dispatched" ? [e.agentId] : e.agentIds, se.time);
    case "target.started": {
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      // Stored only if it won the target's race (js/raceForTarget.ts): no
      // coordinator timed out or cancelled this dispatched target before it,
      // and a cancel requested meanwhile lets it finish.
      if (terminal) return `deployment is ${rec.state}`;
      if (t.state !== "DISPATCHED") return `target is ${t.state}`;
      moveTarget(rec, e.agentId, t, "APPLYING");
      t.startedAt = se.time;
      t.startedSeq = se.seq;
      return undefined;
    }
    case "target.progress": {
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      const last = e.lines.filter((l) => l.trim() !== "").at(-1);
      if (last !== undefined) t.lastOutput = last.slice(0, 512);
      return undefined;
    }
    case "target.result": {
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      // DISPATCHED too: an agent that crashed between its journal and its
      // started event reports FAILED without having run anything.
      if ((t.state !== "APPLYING" && t.state !== "DISPATCHED") || terminal) {
        t.lateResult = `${e.outcome}: ${e.message}`.slice(0, 1024);
        return `late result: target is already ${t.state}`;
      }
      moveTarget(rec, e.agentId, t, e.outcome);
      t.message = e.message;
      t.finishedAt = se.time;
      if (e.rolledBack) t.rolledBack = true;
      return undefined;
    }
    case "target.declined": {
      // The agent ran nothing and never will (its journal says declined): the
      // target is terminal now, with the agent's reason, rather than when a
      // delivery timeout runs out. So does a decline marked afterStart: the
      // agent's own start won, and its look after the race (handleCommand.ts)
      // found the deployment being cancelled. Any other decline after the
      // target started (a journal lost, the race found taken) changes
      // nothing: that start may have run.
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      const open = t.state === "DISPATCHED" || (e.afterStart === true && t.state === "APPLYING");
      if (!open || terminal) return `declined, but the target is ${t.state}`;
      moveTarget(rec, e.agentId, t, rec.cancelRequested ? "CANCELLED" : "FAILED");
      t.message = `declined by the agent: ${e.reason}`.slice(0, 1024);
      t.finishedAt = se.time;
      return undefined;
    }
    case "target.timed_out": {
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      // A decision made on a stale view loses to what the stream already has.
      // A delivery timeout needs a target still DISPATCHED (the coordinator
      // won its claim); an apply timeout also takes one the agent claimed but
      // never reported started (it died between its claim and its event).
      const ok = e.phase === "delivery" ? t.state === "DISPATCHED" : t.state === "APPLYING" || t.state === "DISPATCHED";
      if (!ok || terminal) return `target is ${t.state}`;
      moveTarget(rec, e.agentId, t, "TIMED_OUT");
      t.message = e.message;
      t.finishedAt = se.time;
      return undefined;
    }
    case "target.cancelled": {
      const t = target(rec, e.agentId);
      if (!t) return `${e.agentId} is not a target`;
      if (t.state !== "DISPATCHED" || terminal) return `target is ${t.state}`;
      moveTarget(rec, e.agentId, t, "CANCELLED");
      t.message = e.message;
      t.finishedAt = se.time;
      return undefined;
    }
    case "deployment.halted":
      if (terminal || rec.halted) return `deployment is ${rec.state}`;
      rec.halted = true;
      rec.message = e.message;
      for (const id of targetIds(rec)) {
        const t = rec.targets[id]!;
        if (t.state === "PENDING") {
          moveTarget(rec, id, t, "SKIPPED");
          t.message = "skipped: too many failures";
          t.finishedAt = se.time;
        }
      }
      return undefined;
    case "deployment.cancel_requested":
      if (terminal) return `deployment is ${rec.state}`;
      if (rec.cancelRequested) {
        // A second cancel that adds kill_running (the applies still running
        // are killed) or a revert to a first one without them.
        const kill = e.kill === true && !rec.killRequested;
        const revert = e.revertTo !== undefined && rec.cancelRevertTo === undefined;
        if (!kill && !revert) return "deployment is already cancelling";
        if (kill) rec.killRequested = true;
        if (revert) rec.cancelRevertTo = e.revertTo;
        return undefined;
      }
      rec.cancelRequested = true;
      if (e.kill === true) rec.killRequested = true;
      if (e.revertTo !== undefined) rec.cancelRevertTo = e.revertTo;
      if (e.by !== undefined) rec.cancelledBy = e.by;
      rec.message = cancelMessage(e.reason);
      // Pending targets were never sent a command: cancelled here. Dispatched
      // ones are cancelled one by one (target.cancelled) once a coordinator
      // wins their claim; those their agent claimed first finish.
      for (const id of targetIds(rec)) {
        const t = rec.targets[id]!;
        if (t.state === "PENDING") {
          moveTarget(rec, id, t, "CANCELLED");
          t.message = rec.message;
          t.finishedAt = se.time;
        }
      }
      return undefined;
    case "deployment.finished":
      if (terminal) return `deployment is already ${rec.state}`;
      rec.state = e.state;
      rec.message = e.message;
      rec.finishedAt = se.time;
      rec.finishedSeq = se.seq;
      return undefined;
    case "agent.rejected_message":
      return "agent rejected a malformed message";
    case "deployment.paused":
      if (terminal || rec.paused) return `deployment is ${rec.paused ? "already paused" : rec.state}`;
      rec.paused = { by: e.by, reason: e.reason, at: se.time };
      return undefined;
    case "deployment.resumed":
      if (terminal || !rec.paused) return `deployment is ${terminal ? rec.state : "not paused"}`;
      delete rec.paused;
      return undefined;
    case "deployment.canary_done":
      if (terminal || rec.canaryDoneAt !== undefined || rec.promotedBy !== undefined) return "no canary wave is waiting";
      rec.canaryDoneAt = se.time;
      rec.message = e.message;
      return undefined;
    case "deployment.promoted":
      if (terminal || rec.promotedBy !== undefined || !(rec.spec.strategy.canary ?? 0)) return "no canary wave to promote";
      rec.promotedBy = e.by;
      rec.message = "";
      return undefined;
  }
}

/**
 * The targets a deployment changed, or may have: every one that started
 * applying (its hooks ran). What an automatic revert brings back.
 */
export function changedTargetsOf(rec: DeploymentRecord): string[] {
  return rec.spec.targets.filter((id) => rec.targets[id]?.startedAt !== undefined);
}

/**
 * The release a deployment's changed targets are brought back to when it
 * ends: a FAILED one with strategy.auto_revert, to the desired release at its
 * creation (spec.revertTo); a CANCELLED one whose cancel asked for a revert,
 * to the release the cancel named (cancelRevertTo). Never for a revert
 * itself. Undefined: nothing is reverted. `state`: the verdict, for a record
 * not yet terminal (plan.ts finishOf).
 */
export function revertToOf(rec: DeploymentRecord, state: DeploymentState = rec.state): RestoredRelease | undefined {
  if (rec.spec.reverts !== undefined) return undefined;
  if (state === "FAILED" && rec.spec.strategy.autoRevert) return rec.spec.revertTo;
  if (state === "CANCELLED") return rec.cancelRevertTo;
  return undefined;
}

/**
 * The canary wave: the first strategy.canary targets in rollout order,
 * leaving out those offline or already current at creation (never
 * dispatched). Empty without a canary wave.
 */
export function canaryTargetsOf(rec: DeploymentRecord): string[] {
  const n = rec.spec.strategy.canary ?? 0;
  if (n <= 0) return [];
  const offline = rec.spec.offlineTargets ?? {};
  const current = rec.spec.currentTargets ?? {};
  const wave: string[] = [];
  for (const id of rec.spec.targets) {
    if (wave.length >= n) break;
    if (!Object.hasOwn(offline, id) && !Object.hasOwn(current, id)) wave.push(id);
  }
  return wave;
}

export function foldAll(events: Iterable<StoredEvent>): DeploymentRecord | undefined {
  let rec: DeploymentRecord | undefined;
  const held: HeldChunks = new Map();
  for (const se of events) rec = foldEvent(rec, se, held).record;
  return rec;
}

const targetIdsOf = new WeakMap<Record<string, TargetRecord>, readonly string[]>();

/**
 * The record's target ids, in the order of its targets object. Its keys
 * are all set when the object is made (the created event's fold, or a
 * projection's assembly) and never change after, so they are listed once
 * per object: enumerating a 10,000-key object took ~3 ms (Object.values,
 * Object.entries) and a coordinator did it several times a reconcile pass,
 * against ~0.8 ms to look up 10,000 keys from a list.
 */
export function targetIds(rec: Pick<DeploymentRecord, "targets">): readonly string[] {
  let ids = targetIdsOf.get(rec.targets);
  if (ids === undefined) {
    ids = Object.keys(rec.targets);
    targetIdsOf.set(rec.targets, ids);
  }
  return ids;
}

/**
 * Per-state counts of a targets object, kept once counted: every state
 * change the fold makes after that goes through moveTarget, which keeps them.
 * A reconcile pass counted all of a deployment's targets (plan.ts): in the
 * bench's two rollouts to 10,000 agents, 4.3 s of the coordinator's 18.5 s
 * of CPU. Keyed by the object, as targetIdsOf: a record copied, read from
 * KV or built by hand has another targets object, counted once when asked.
 * Nothing outside this file sets a target's state.
 */
const stateCounts = new WeakMap<Record<string, TargetRecord>, Record<TargetState, number>>();
/** How many targets were ever dispatched, kept as stateCounts are. */
const everDispatched = new WeakMap<Record<string, TargetRecord>, { n: number }>();

/**
 * DEPLOY_VERIFY_COUNTS=1 (the test suite): every countTargets of a kept
 * count also counts the targets and throws on a difference, so a state
 * changed behind moveTarget's back fails the tests rather than a plan.
 */
const VERIFY_COUNTS = typeof process !== "undefined" && process.env["DEPLOY_VERIFY_COUNTS"] === "1";

function scanCounts(rec: Pick<DeploymentRecord, "targets">): Record<TargetState, number> {
  const counts: Record<TargetState, number> = {
    PENDING: 0, DISPATCHED: 0, APPLYING: 0, SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0, CANCELLED: 0, SKIPPED: 0,
  };
  const { targets } = rec;
  for (const id of targetIds(rec)) counts[targets[id]!.state]++;
  return counts;
}

/** How many of the record's targets are in each state (a copy: the caller may change it). */
export function countTargets(rec: DeploymentRecord): Record<TargetState, number> {
  let kept = stateCounts.get(rec.targets);
  if (kept === undefined) {
    kept = scanCounts(rec);
    stateCounts.set(rec.targets, kept);
  } else if (VERIFY_COUNTS) {
    const scanned = scanCounts(rec);
    for (const k of Object.keys(scanned) as TargetState[]) {
      if (scanned[k] !== kept[k]) throw new Error(`countTargets of ${rec.spec.id}: kept ${JSON.stringify(kept)}, counted ${JSON.stringify(scanned)}: a target's state was changed outside moveTarget`);
    }
  }
  return { ...kept };
}

/**
 * How many of the record's targets were ever dispatched (a target is
 * dispatched once: PENDING → DISPATCHED). The coordinator compares it with
 * the commands it published (rollout/commands.ts) before it looks for a
 * dispatched target without one.
 */
export function dispatchedCount(rec: DeploymentRecord): number {
  let kept = everDispatched.get(rec.targets);
  if (kept === undefined || VERIFY_COUNTS) {
    // Dispatched or applying now, or finished after a dispatch (the fold
    // sets dispatchedAt then; a record built without it still counts what
    // it shows dispatched).
    let n = 0;
    const { targets } = rec;
    for (const id of targetIds(rec)) {
      const t = targets[id]!;
      if (t.state === "DISPATCHED" || t.state === "APPLYING" || t.dispatchedAt !== undefined) n++;
    }
    if (kept !== undefined && kept.n !== n) throw new Error(`dispatchedCount of ${rec.spec.id}: kept ${kept.n}, counted ${n}: a target was dispatched outside moveTarget`);
    kept ??= { n };
    everDispatched.set(rec.targets, kept);
  }
  return kept.n;
}

/** Targets that reached a terminal state, in the order they did, from when finishedSince was first asked of the targets object. */
const finishedLogs = new WeakMap<Record<string, TargetRecord>, string[]>();

/**
 * The targets that reached a terminal state since `cursor` (a `next` this
 * returned for the same record), and the cursor to pass next time; or
 * undefined when this targets object has kept no such list until now (a
 * record copied, read from KV or folded from scratch): the caller looks
 * through the targets once, and the list is kept from here on. Lets the
 * coordinator's metrics count finished targets by what a pass changed, not
 * by looking at every target still open (reconciler.ts #observe).
 */
export function finishedSince(rec: DeploymentRecord, cursor: number): { ids: readonly string[]; next: number } | undefined {
  const log = finishedLogs.get(rec.targets);
  if (log === undefined) {
    finishedLogs.set(rec.targets, []);
    return undefined;
  }
  return { ids: log.slice(cursor), next: log.length };
}

/** Sets target `id`'s state, keeping its record's counts (countTargets, dispatchedCount, finishedSince) where they are kept. */
function moveTarget(rec: DeploymentRecord, id: string, t: TargetRecord, to: TargetState): void {
  const kept = stateCounts.get(rec.targets);
  if (kept !== undefined) {
    kept[t.state]--;
    kept[to]++;
  }
  if (to === "DISPATCHED") {
    const d = everDispatched.get(rec.targets);
    if (d !== undefined) d.n++;
  }
  if (isTerminalTarget(to) && !isTerminalTarget(t.state)) finishedLogs.get(rec.targets)?.push(id);
  t.state = to;
}

export const failuresOf = (c: Record<TargetState, number>): number => c.FAILED + c.TIMED_OUT;
export const inFlightOf = (c: Record<TargetState, number>): number => c.DISPATCHED + c.APPLYING;

/** Targets SKIPPED because they were offline when the deployment was created (the rest of the SKIPPED were halted, or already current). */
export function offlineSkippedOf(rec: DeploymentRecord): number {
  let n = 0;
  for (const id of Object.keys(rec.spec.offlineTargets ?? {})) if (rec.targets[id]?.state === "SKIPPED") n++;
  return n;
}

/** Targets SKIPPED because they already ran the changeset when the deployment was created (strategy.only_outdated). */
export function currentSkippedOf(rec: DeploymentRecord): number {
  let n = 0;
  for (const id of Object.keys(rec.spec.currentTargets ?? {})) if (rec.targets[id]?.state === "SKIPPED") n++;
  return n;
}
