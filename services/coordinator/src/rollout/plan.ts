// The rollout's decisions, as a pure function of a deployment's folded state
// and the clock. The reconciler appends what this returns, with
// compare-and-set, and folds the result before deciding again, so every
// decision is made on a view that includes the previous ones.
import {
  DEFAULT_MAX_PAUSE_MS,
  targetIds,
  canaryTargetsOf,
  changedTargetsOf,
  countTargets,
  failuresOf,
  inFlightOf,
  isTerminalDeployment,
  MAX_DISPATCH_BATCH,
  cancelMessage,
  offlineSkippedOf,
  currentSkippedOf,
  revertToOf,
  dispatchedIdsOf,
  type DeploymentRecord,
  type EventBody,
  type RestoredRelease,
  type TargetState,
} from "../../../shared/src/index.js";

export interface PlanContext {
  now: number;
  /** Server time of the agent's last heartbeat, undefined when unknown. */
  lastHeartbeat: (agentId: string) => number | undefined;
  agentLiveMs: number;
  applyTimeoutGraceMs: number;
  /** The largest event the server takes (limits.ts eventBudget); absent: batches are cut by count only. */
  eventBudgetBytes?: number;
  /** What earlier plans of the same deployment learned (the reconciler keeps one per deployment); absent: every check scans every target. */
  memo?: PlanMemo;
}

/**
 * Facts about a deployment that later plans of it reuse instead of scanning
 * every target again. A reconcile pass plans after every batch of events,
 * and at 10,000 targets its scans were most of the coordinator's CPU: a
 * profile of the bench's rollout to 10,000 agents (cold and warm, 36.7 s of
 * coordinator CPU) had 7.3 s in plan's timeout scan and 17 s in the scan
 * for a cancel under way, over thousands of passes.
 */
export interface PlanMemo {
  /**
   * No target can time out before this time (servers' clock, ms), as far as
   * the last scan could tell: the earliest deadline of the targets in
   * flight then, and no later than the shortest timeout after it (a target
   * dispatched or started later has a later time, so its deadline is at
   * least that far away). A heartbeat only moves a deadline later. The scan
   * runs again at the latest MAX_QUIET_MS after the last one, and at once
   * when the clock reads earlier than at that scan. So a timeout is never
   * decided early; one is seen late only for an event stored before a scan
   * and folded after it, by at most MAX_QUIET_MS, as when a sweep finds it.
   */
  quietUntil?: number;
  /** When that scan ran (servers' clock, ms). */
  scannedAt?: number;
  /** No target before this index of the rollout order is PENDING: a target leaves PENDING once and never comes back (fold.ts). */
  pendingFrom?: number;
}

/** The longest the timeout scan is skipped on the strength of a memo (PlanMemo.quietUntil); the sweep re-examines each deployment every second (rollout.sweepIntervalMs) anyway. */
const MAX_QUIET_MS = 1000;

/** A targets.dispatched event's bytes besides its ids (schema, deployment id, time, type: ~150), with room to spare. */
const DISPATCH_EVENT_BYTES = 256;

const secs = (ms: number): string => `${Math.round(ms / 100) / 10}s`;

export function plan(rec: DeploymentRecord, ctx: PlanContext): EventBody[] {
  if (isTerminalDeployment(rec.state)) return [];
  // The first decisions, made on the started view. A first dispatch starts
  // the deployment itself (fold.ts): no deployment.started before it, one
  // stored event and one round trip less before the first command. Anything
  // else (a cancel, a finish with nothing to dispatch) follows an explicit
  // deployment.started, in the same chain.
  if (rec.state === "PENDING") {
    const first = plan({ ...rec, state: "RUNNING" }, ctx);
    return first[0] !== undefined && dispatchedIdsOf(first[0]).length > 0 ? first : [{ type: "deployment.started" }, ...first];
  }
  const { strategy } = rec.spec;
  // A delivery timeout (and a cancel, below) of a DISPATCHED target races
  // its agent's start on the target's own subject: whichever the server
  // stores first decides (js/raceForTarget.ts).
  const memo = ctx.memo;
  if (memo?.quietUntil === undefined || memo.scannedAt === undefined || ctx.now >= memo.quietUntil || ctx.now < memo.scannedAt) {
    const timeouts = timeoutsOf(rec, ctx);
    if (timeouts.length > 0) return timeouts;
  }

  const counts = countTargets(rec);
  // A cancel requested stops dispatched targets whose agent has not started
  // them yet. A cancel of this coordinator's cancelled them before its
  // request was stored (cancelDecisions); these are an older coordinator's,
  // or dispatched after the view the request was decided on.
  if (rec.cancelRequested) {
    const cancels = cancelsOfDispatched(rec, rec.message || "cancelled");
    if (cancels.length > 0) return cancels;
  } else {
    // A cancel under way: its target.cancelled are stored, its request not
    // yet. The slots they freed go to no other target, and nothing else is
    // decided (a halt, a promote, a finish that is not CANCELLED) until the
    // request comes; a request that has not come CANCEL_COMPLETE_MS after
    // its last target.cancelled (its caller died between the two) is made
    // here, with the caller's reason.
    const begun = counts.CANCELLED > 0 ? cancelUnderWay(rec) : undefined;
    if (begun !== undefined) {
      if (ctx.now - begun.at < CANCEL_COMPLETE_MS) return [];
      const completed = "completed by the coordinator: its caller did not finish it";
      return cancelDecisions(rec, { type: "deployment.cancel_requested", reason: begun.reason ? `${begun.reason} (${completed})` : completed, by: "coordinator", byVia: "coordinator" });
    }
  }

  const failures = failuresOf(counts);
  if (!rec.halted && !rec.cancelRequested && failures > strategy.maxFailures && counts.PENDING > 0) {
    return [{ type: "deployment.halted", message: `${failures} failed target(s) exceed max_failures ${strategy.maxFailures}: dispatching stopped` }];
  }
  // Before a promote only the canary wave is dispatched; one canary that
  // fails stops the rollout whatever max_failures allows (the wave is there
  // to find a bad release before the rest of the fleet gets it).
  const inCanary = (strategy.canary ?? 0) > 0 && rec.promotedBy === undefined;
  const wave = inCanary ? canaryTargetsOf(rec) : [];
  if (inCanary && !rec.halted && !rec.cancelRequested && counts.PENDING > 0) {
    const failed = wave.find((id) => rec.targets[id]?.state === "FAILED" || rec.targets[id]?.state === "TIMED_OUT");
    if (failed !== undefined) {
      return [{ type: "deployment.halted", message: `canary ${failed} ${rec.targets[failed]!.state.toLowerCase().replace("_", " ")}: rollout halted before the other targets` }];
    }
  }
  // Waiting (paused, or for a promote) is bounded: DESIGN.md, every
  // deployment finishes. What is left is cancelled after max_pause.
  if (!rec.halted && !rec.cancelRequested && counts.PENDING > 0) {
    const since = rec.paused ? rec.paused.at : inCanary ? rec.canaryDoneAt : undefined;
    const maxPause = strategy.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS;
    if (since !== undefined && ctx.now - Date.parse(since) > maxPause) {
      const what = rec.paused ? "paused" : "waiting for a promote";
      return cancelDecisions(rec, { type: "deployment.cancel_requested", reason: `${what} for longer than max_pause ${secs(maxPause)}`, by: "coordinator", byVia: "coordinator" });
    }
  }
  if (inCanary && !rec.halted && !rec.cancelRequested && !rec.paused && counts.PENDING > 0) {
    if (rec.canaryDoneAt === undefined && wave.every((id) => rec.targets[id]?.state === "SUCCEEDED")) {
      const soak = strategy.canarySoakMs;
      const next = soak === undefined ? `waiting for a promote (deployctl promote ${rec.spec.id})` : `promoting by itself after canary_soak ${secs(soak)}`;
      return [{ type: "deployment.canary_done", message: `canary wave of ${wave.length} succeeded; ${next}` }];
    }
    if (rec.canaryDoneAt !== undefined && strategy.canarySoakMs !== undefined && ctx.now - Date.parse(rec.canaryDoneAt) >= strategy.canarySoakMs) {
      return [{ type: "deployment.promoted", by: "canary_soak", byVia: "coordinator" }];
    }
  }
  if (!rec.halted && !rec.cancelRequested && !rec.paused) {
    // strategy.soak: a target that succeeded keeps its slot that long (bake
    // time), so the next target starts only once it has been watched. Ended
    // by the sweep that comes after (rollout.sweepIntervalMs), as canary_soak.
    const slots = strategy.maxConcurrency - inFlightOf(counts) - soakingOf(rec, ctx.now);
    if (slots > 0 && counts.PENDING > 0) {
      const ids: string[] = [];
      const order = inCanary ? wave : rec.spec.targets;
      let i = inCanary ? 0 : (memo?.pendingFrom ?? 0);
      for (; i < order.length && ids.length < slots; i++) {
        const agentId = order[i]!;
        if (rec.targets[agentId]?.state !== "PENDING") continue;
        // Those before the first found are not PENDING, and never will be again.
        if (ids.length === 0 && memo && !inCanary) memo.pendingFrom = i;
        ids.push(agentId);
      }
      // One event per MAX_DISPATCH_BATCH targets: a fan-out of 1,000 was
      // 1,000 chained compare-and-set appends (1.6 s of a 5 s rollout in the
      // bench); a single target keeps the per-target event. A batch also
      // ends before its event would pass the budget (ctx.eventBudgetBytes):
      // 1,000 ids of 64 characters take 67 KB, over what a server with a
      // small max_payload takes (4 KiB: ~50 ids).
      if (ids.length === 1) return [{ type: "target.dispatched", agentId: ids[0]! }];
      const batches: EventBody[] = [];
      const budget = (ctx.eventBudgetBytes ?? Number.MAX_SAFE_INTEGER) - DISPATCH_EVENT_BYTES;
      let batch: string[] = [];
      let bytes = 0;
      for (const id of ids) {
        // JSON: the id in quotes and a comma.
        if (batch.length > 0 && (batch.length >= MAX_DISPATCH_BATCH || bytes + id.length + 3 > budget)) {
          batches.push({ type: "targets.dispatched", agentIds: batch });
          batch = [];
          bytes = 0;
        }
        batch.push(id);
        bytes += id.length + 3;
      }
      // (None: a canary wave waiting for its promote has free slots and no target to give them.)
      if (batch.length > 0) batches.push(batch.length === 1 ? { type: "target.dispatched", agentId: batch[0]! } : { type: "targets.dispatched", agentIds: batch });
      return batches;
    }
  }
  if (counts.PENDING + counts.DISPATCHED + counts.APPLYING === 0) return [finishOf(rec, counts)];
  return [];
}

/**
 * The timeouts due now; records in ctx.memo when the next one can be due at
 * the earliest.
 */
function timeoutsOf(rec: DeploymentRecord, ctx: PlanContext): EventBody[] {
  const { strategy } = rec.spec;
  const applyLimit = strategy.applyTimeoutMs + ctx.applyTimeoutGraceMs;
  // An applying target times out after applyLimit, or once silent for
  // agentLiveMs and running for as long: not before the shorter of the two.
  const applyBound = Math.min(applyLimit, ctx.agentLiveMs);
  let quietUntil = ctx.now + Math.min(MAX_QUIET_MS, strategy.deliveryTimeoutMs, applyBound);
  const timeouts: EventBody[] = [];
  for (const agentId of targetIds(rec)) {
    const t = rec.targets[agentId]!;
    if (t.state === "DISPATCHED" && t.dispatchedAt) {
      const at = Date.parse(t.dispatchedAt);
      // An unreadable time (NaN) never times out, here or below, and must not make the bound NaN.
      if (!Number.isNaN(at)) quietUntil = Math.min(quietUntil, at + strategy.deliveryTimeoutMs);
      const waited = ctx.now - at;
      if (waited > strategy.deliveryTimeoutMs) {
        timeouts.push({
          type: "target.timed_out",
          agentId,
          phase: "delivery",
          message: `agent did not start within delivery_timeout ${secs(strategy.deliveryTimeoutMs)}`,
        });
      }
    } else if (t.state === "APPLYING" && t.startedAt) {
      const at = Date.parse(t.startedAt);
      if (!Number.isNaN(at)) quietUntil = Math.min(quietUntil, at + applyBound);
      const ran = ctx.now - at;
      const hb = ctx.lastHeartbeat(agentId);
      const silentFor = hb === undefined ? ran : ctx.now - hb;
      if (ran > applyLimit) {
        timeouts.push({ type: "target.timed_out", agentId, phase: "apply", message: `no result within apply_timeout ${secs(strategy.applyTimeoutMs)}` });
      } else if (silentFor > ctx.agentLiveMs && ran > ctx.agentLiveMs) {
        timeouts.push({ type: "target.timed_out", agentId, phase: "apply", message: `agent stopped heartbeating ${secs(silentFor)} ago while applying` });
      }
    }
  }
  if (ctx.memo) {
    ctx.memo.quietUntil = quietUntil;
    ctx.memo.scannedAt = ctx.now;
  }
  return timeouts;
}

/** How long a cancel's request may follow its target.cancelled before the coordinator makes it (plan: a cancel under way). */
export const CANCEL_COMPLETE_MS = 5000;

type CancelRequest = Extract<EventBody, { type: "deployment.cancel_requested" }>;

function cancelsOfDispatched(rec: DeploymentRecord, message: string): EventBody[] {
  return targetIds(rec)
    .filter((agentId) => rec.targets[agentId]!.state === "DISPATCHED")
    .map((agentId) => ({ type: "target.cancelled" as const, agentId, message }));
}

/**
 * What cancels a running deployment, in the order it is written: a
 * target.cancelled for every target DISPATCHED and not started, each racing
 * its agent's start on the target's own subject (appendRaces), then the
 * request, chained on the coordinator subject after the last coordinator
 * event of the view they were decided on (appendChained). So a target
 * dispatched after that view makes the request fail, and the next view
 * cancels it too: when the request is stored, every target dispatched
 * before it has its target.cancelled or a start stored before it, and no
 * start can be stored after it. The race on the target's subject is the
 * whole of an agent's check against a cancel: it makes no look at the
 * deployment (Command.cancelFenced). A start that won keeps running, as
 * before (or is killed, with kill_running).
 */
export function cancelDecisions(rec: DeploymentRecord, request: CancelRequest): EventBody[] {
  return [...cancelsOfDispatched(rec, cancelMessage(request.reason)), request];
}

/**
 * A cancel whose target.cancelled are stored and its request not (only a
 * cancel stores a target.cancelled, and only before its request): when
 * the last was stored, and the reason it gives.
 */
function cancelUnderWay(rec: DeploymentRecord): { at: number; reason: string } | undefined {
  let last: { at: number; reason: string } | undefined;
  for (const id of targetIds(rec)) {
    const t = rec.targets[id]!;
    if (t.state !== "CANCELLED" || t.finishedAt === undefined) continue;
    const at = Date.parse(t.finishedAt);
    if (last === undefined || at > last.at) last = { at, reason: (t.message ?? "").replace(/^cancelled(: )?/, "") };
  }
  return last;
}

/** Targets that SUCCEEDED less than strategy.soakMs ago: each still holds its slot. */
function soakingOf(rec: DeploymentRecord, now: number): number {
  const soak = rec.spec.strategy.soakMs;
  if (soak === undefined) return 0;
  let n = 0;
  for (const id of targetIds(rec)) {
    const t = rec.targets[id]!;
    if (t.state === "SUCCEEDED" && t.finishedAt !== undefined && now - Date.parse(t.finishedAt) < soak) n++;
  }
  return n;
}

/**
 * The verdict of a deployment whose targets are all terminal: the one place
 * it is decided (fold.ts only records the deployment.finished it is given).
 * max_failures decides whether the rollout goes on after failures (SSM's
 * max-errors), never the verdict: SUCCEEDED only when every target
 * SUCCEEDED; any FAILED or TIMED_OUT target makes it FAILED, and the message
 * says whether the rollout went on (within max_failures) or was halted. A
 * cancel requested ends CANCELLED, as before.
 *
 * Targets that were offline when the deployment was created (SKIPPED from
 * the start) are a shortfall, never a failure of the apply: when every
 * other target SUCCEEDED the deployment SUCCEEDS if convergence was on for
 * the environment at creation (spec.convergeOffline: they are brought to
 * this release when they come back, which needs it to be the desired
 * release), and says so; with convergence off nothing will ever bring them
 * to it, so it is FAILED ("… 1 offline (skipped; convergence is off …)").
 */
export function finishOf(rec: DeploymentRecord, counts: Record<TargetState, number>): EventBody {
  const verdict = verdictOf(rec, counts);
  const r = rec.spec.restores;
  // A revert or rollback names the release it restored (or failed to).
  if (r && verdict.state !== "CANCELLED") {
    const what = `${rec.spec.app} ${r.version} (release ${r.release}, from ${r.deploymentId})`;
    verdict.message = `${verdict.state === "SUCCEEDED" ? "restored" : "restoring"} ${what}${verdict.state === "SUCCEEDED" ? "" : " failed"}: ${verdict.message}`;
  }
  if (verdict.state === "FAILED" && rec.spec.strategy.autoRevert) verdict.message += `; auto_revert: ${revertNote(rec, rec.spec.revertTo)}`;
  // A cancel that asked for a revert named a release to go back to (queries/cancelDeployment.ts).
  else if (verdict.state === "CANCELLED" && rec.cancelRevertTo) verdict.message += `; revert: ${revertNote(rec, revertToOf(rec, "CANCELLED"))}`;
  return verdict;
}

/** What the revert of this deployment does (releases/rollback.ts startRevert acts on the same facts: fold.ts revertToOf). */
function revertNote(rec: DeploymentRecord, to: RestoredRelease | undefined): string {
  if (!to) return `nothing to restore (no deployment of ${rec.spec.app} to ${rec.spec.environment} had succeeded before this one)`;
  const changed = changedTargetsOf(rec).length;
  if (changed === 0) return "nothing to restore (no target started applying)";
  return `bringing ${changed} changed target(s) back to ${to.version} (release ${to.release})`;
}

function verdictOf(rec: DeploymentRecord, counts: Record<TargetState, number>): Extract<EventBody, { type: "deployment.finished" }> {
  const total = rec.spec.targets.length;
  if (rec.cancelRequested) return { type: "deployment.finished", state: "CANCELLED", message: rec.message || "cancelled" };
  // Already on the changeset at creation (strategy.only_outdated): done, as if succeeded.
  const current = currentSkippedOf(rec);
  const succeeded = `${counts.SUCCEEDED} of ${total} target(s) succeeded${current > 0 ? `, ${current} already on ${rec.spec.changeset.version}` : ""}`;
  if (counts.SUCCEEDED + current === total) return { type: "deployment.finished", state: "SUCCEEDED", message: succeeded };
  const offline = offlineSkippedOf(rec);
  const halted = counts.SKIPPED - offline - current;
  const { maxFailures } = rec.spec.strategy;
  const failures = failuresOf(counts);
  const parts = [succeeded];
  if (counts.FAILED > 0) parts.push(`${counts.FAILED} failed`);
  if (counts.TIMED_OUT > 0) parts.push(`${counts.TIMED_OUT} timed out`);
  if (halted > 0) parts.push(`${halted} skipped`);
  if (counts.CANCELLED > 0) parts.push(`${counts.CANCELLED} cancelled`);
  if (offline > 0) {
    const converge = rec.spec.convergeOffline === true;
    parts.push(`${offline} offline (skipped; ${converge ? "converges when back" : `convergence is off in ${rec.spec.environment}`})`);
    if (converge && counts.SUCCEEDED + current + offline === total) return { type: "deployment.finished", state: "SUCCEEDED", message: parts.join(", ") };
  }
  if (failures === 0) return { type: "deployment.finished", state: "FAILED", message: parts.join(", ") };
  const why =
    failures <= maxFailures
      ? `rollout continued: within max_failures ${maxFailures}`
      : rec.halted
        ? `rollout halted: more than max_failures ${maxFailures}`
        : `more than max_failures ${maxFailures}`;
  return { type: "deployment.finished", state: "FAILED", message: `${parts.join(", ")} (${why})` };
}
