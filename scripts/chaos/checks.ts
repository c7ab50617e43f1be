// The invariants checked after every run (DESIGN.md "What must always hold").
import { Kvm } from "@nats-io/kv";
import { startLeaseFor } from "../../services/coordinator/src/rollout/publishCommand.js";
import { canaryTargetsOf, changedTargetsOf, foldAll, revertToOf, type DeploymentRecord } from "../../services/shared/src/fold.js";
import { dispatchedIdsOf, isTerminalDeployment, parseAgentRecord, releaseName } from "../../services/shared/src/index.js";
import { readCurrent } from "../../services/agent/src/bundle/releases.js";
import { deploymentsOf, foldRun, readAllEvents, readProjection, stable, type RunEvent } from "./events.js";
import type { FaultKind, RunOutcome } from "./scenario.js";
import { AGENT_LIVE_MS, APPLY_GRACE_MS, HEARTBEAT_MS, type ChaosStack } from "./stack.js";

export const INVARIANTS = {
  "at-most-once": "each (deployment, agent) executable ran at most once",
  "bounded-completion": "every deployment reached a terminal state within its timeouts plus the outage plus the slack",
  "results-in-stream": "every result (and decline) an agent journaled is in the event stream",
  "kv-equals-fold": "the KV projection equals the fold of the event stream (a terminal deployment's may trail it by events the fold ignores)",
  "no-run-after-terminal": "nothing ran for a deployment already terminal or cancelled (unless its start won before the cancel), or a target already TIMED_OUT or CANCELLED, or later than the start lease after its start won",
  "one-request-one-deployment": "every answer for a request id names the same deployment, and at most one was created",
  "canary-first": "before its promote, a deployment with a canary wave dispatched only the wave, and a failed canary was never promoted",
  "poison-skipped": "every unreadable message in a running deployment's events was skipped and logged by a coordinator (its deployment still finishes: bounded-completion)",
  "lost-reply-recovered": "an agent whose target.started reply was lost, but which was stored, went on and reported the target's result, or a decline after its start when the deployment was cancelled or finished meanwhile (never left to time out)",
  "server-clock": "every timeout was stored at least its limit after what it times out, and every agent skipped as offline was last heard from at least the liveness limit before (both on the servers' clock)",
  "oversize-handled": "a deployment whose targets alone exceed the server's max_payload was created with its targets in chunks (and then held to every other invariant), or refused at creation with RESOURCE_EXHAUSTED naming the limit, writing no deployment",
  "interrupted-reported": "an agent killed after its start was stored and before its journal recorded that start reported the target interrupted when it came back (nothing run, never left to time out)",
  "release-shown": "once the run settled, every agent's registry entry names, as its release of each app, the deployment of its last SUCCEEDED result for that app in the stream (within a few heartbeats: the agent writes it with its next one, or from its journal when it starts again)",
  "current-release": "once the run settled, on every agent each app's `current` release (the symlink the installs switch) is the release of its last SUCCEEDED result of a bundle for that app in the stream, or none when none succeeded: a failed, interrupted, killed or cancelled install went back to the release before it",
  "kill-reached": "in a run without a coordinator or NATS fault, every apply in flight when a cancel with kill_running was stored, on an agent no fault hit, ended killed within KILL_REACH_MS of the cancel (the coordinator's kill notice; the agents' own look comes after any apply timeout of the suite)",
  "revert-made": "a deployment that ended FAILED with auto_revert, or CANCELLED by a cancel with revert, and changed a target has exactly one revert (request id revert.<id>), to the release it recorded, of exactly the targets it changed, and that revert ended; or none because a later deployment of the pair took its lock first",
} as const;
export type Invariant = keyof typeof INVARIANTS;

/** Added to each deployment's worst-case time (process restarts, reconnects, sweeps). */
export const COMPLETION_SLACK_MS = 10_000;
/**
 * An agent checks the deployment, then starts the executable: a cancel or
 * timeout stored in that gap is a race no check can close. Executions that
 * start this close after such an event are reported as near misses, not
 * violations.
 */
export const START_RACE_TOLERANCE_MS = 250;
/** How long after a cancel with kill_running is stored the applies in flight may take to report that they were killed (the notice, the look, the kill, the result). */
export const KILL_REACH_MS = 5000;
/** Faults that may stop a kill notice or the look it asks for: a run with one of them injected checks no kill-reached. */
const NOTICE_FAULTS: ReadonlySet<FaultKind> = new Set(["coordinator-kill", "coordinator-kill-one-of-two", "coordinator-paused", "nats-kill", "cluster-stream-leader-kill"]);

/** The start lease the suite's coordinators give (90 % of the liveness limit): a start that won may begin only this long after. */
export const START_LEASE_MS = startLeaseFor(AGENT_LIVE_MS);

export interface Violation {
  invariant: Invariant;
  detail: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The suite's own reads, retried while a cluster elects a leader after a fault. */
async function retried<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(500);
    }
  }
}

/** After the faults: everything back up, every consumer drained, every journal entry reported. */
export async function settle(stack: ChaosStack, timeoutMs = 12_000): Promise<string | undefined> {
  await stack.restoreAll();
  const until = Date.now() + timeoutMs;
  let why = "";
  while (Date.now() < until) {
    try {
      const jsm = await stack.jsm();
      why = "";
      for (const id of stack.agents.keys()) {
        const ci = await jsm.consumers.info("DEPLOY_COMMANDS", `agent-${id}`).catch(() => undefined);
        if (ci && (ci.num_pending > 0 || ci.num_ack_pending > 0)) why += `${id}: consumer pending ${ci.num_pending}/${ci.num_ack_pending}; `;
        const j = await stack.journal(id);
        const reported = new Set(j.filter((r) => r.op === "reported").map((r) => r.deploymentId));
        const open = j.filter((r) => (r.op === "finished" || r.op === "declined") && !reported.has(r.deploymentId));
        if (open.length > 0) why += `${id}: ${open.length} unreported; `;
      }
      if (!why) return undefined;
    } catch (err) {
      why = String(err);
    }
    await sleep(250);
  }
  return why;
}

export async function check(stack: ChaosStack, run: RunOutcome): Promise<{ violations: Violation[]; nearMisses: string[]; checked: Record<Invariant, number> }> {
  const violations: Violation[] = [];
  const nearMisses: string[] = [];
  const checked: Record<Invariant, number> = {
    "at-most-once": 0,
    "bounded-completion": 0,
    "results-in-stream": 0,
    "kv-equals-fold": 0,
    "no-run-after-terminal": 0,
    "one-request-one-deployment": 0,
    "canary-first": 0,
    "poison-skipped": 0,
    "lost-reply-recovered": 0,
    "server-clock": 0,
    "oversize-handled": 0,
    "revert-made": 0,
    "kill-reached": 0,
    "interrupted-reported": 0,
    "release-shown": 0,
    "current-release": 0,
  };
  const v = (invariant: Invariant, detail: string): void => void violations.push({ invariant, detail });
  const jsm = await stack.jsm();
  const nc = await stack.conn();
  let events = await retried(() => readAllEvents(jsm));

  // at-most-once and no-run-after-terminal
  for (const agentId of stack.agents.keys()) {
    const starts = (await stack.executions(agentId)).filter((e) => e.phase === "start");
    const per = new Map<string, number>();
    for (const s of starts) per.set(s.deploymentId, (per.get(s.deploymentId) ?? 0) + 1);
    for (const [dep, n] of per) {
      checked["at-most-once"]++;
      if (n > 1) v("at-most-once", `${agentId} ran ${dep} ${n} times`);
    }
    for (const s of starts) {
      checked["no-run-after-terminal"]++;
      const evs = events.get(s.deploymentId) ?? [];
      const stops: [string, RunEvent][] = [];
      // The agent's start that won the target's race: a cancel requested
      // after it lets the target finish (fold.ts), so the apply may begin
      // after the cancel if its start won before it (the reply to a won
      // start lost: the agent learns it won up to the start lease later).
      const won = evs.find((e) => e.source === agentId && e.event.type === "target.started");
      if (won) {
        const after = s.atMs - won.timeMs;
        const msg = `${agentId} started ${s.deploymentId} ${after} ms after its start won (seq ${won.seq}; start lease ${START_LEASE_MS} ms)`;
        if (after > START_LEASE_MS + START_RACE_TOLERANCE_MS) v("no-run-after-terminal", msg);
        else if (after > START_LEASE_MS) nearMisses.push(msg);
      }
      for (const e of evs) {
        if (e.event.type === "deployment.finished") stops.push([`deployment ${e.event.state}`, e]);
        if (e.event.type === "deployment.cancel_requested" && !(won && won.seq < e.seq)) stops.push(["cancel requested", e]);
        if (e.event.type === "target.timed_out" && e.event.agentId === agentId) stops.push([`target TIMED_OUT (${e.event.phase})`, e]);
        // A cancel's target.cancelled comes before its request (rollout/plan.ts cancelDecisions): a start after it lost its race.
        if (e.event.type === "target.cancelled" && e.event.agentId === agentId) stops.push(["target CANCELLED", e]);
      }
      for (const [what, e] of stops) {
        const late = s.atMs - e.timeMs;
        if (late <= 0) continue;
        const msg = `${agentId} started ${s.deploymentId} ${late} ms after ${what} (seq ${e.seq})`;
        if (late <= START_RACE_TOLERANCE_MS) nearMisses.push(msg);
        else v("no-run-after-terminal", msg);
      }
    }
  }

  // results-in-stream
  for (const agentId of stack.agents.keys()) {
    for (const r of await stack.journal(agentId)) {
      if (r.op !== "finished" && r.op !== "declined") continue;
      checked["results-in-stream"]++;
      const type = r.op === "finished" ? "target.result" : "target.declined";
      const found = (events.get(r.deploymentId) ?? []).some(
        (e) => e.source === agentId && e.event.type === type && (e.event.type !== "target.result" || e.event.outcome === r.result?.outcome),
      );
      if (!found) v("results-in-stream", `${agentId}'s ${r.op} entry for ${r.deploymentId} (${r.result?.outcome ?? r.reason ?? ""}) has no ${type} event`);
    }
  }

  // kv-equals-fold: KV may trail the stream by the last write; give it a few seconds.
  for (const id of events.keys()) {
    if (id === "_invalid") continue;
    checked["kv-equals-fold"]++;
    let ok = false;
    let last = "";
    for (let i = 0; i < 20 && !ok; i++) {
      if (i > 0) {
        await sleep(250);
        events = await retried(() => readAllEvents(jsm));
      }
      const folded = foldRun(events, id);
      const kv = await retried(() => readProjection(nc, id));
      ok = stable(folded) === stable(kv);
      // A terminal deployment's projection may trail its stream by events
      // stored after its end whose wake-up was lost (the wake-up consumer
      // acknowledges nothing, and the sweep looks only at deployments
      // holding their lock): an agent's late report or decline, which
      // changes no state but may add a target's late_result or last output
      // line (seed 114215: a TIMED_OUT target's late result, after a
      // cluster node was killed). Every read folds them anyway (DESIGN.md
      // 5: the projection records the last sequence it reflects). It must
      // equal the fold up to its own sequence, with every state the fold of
      // the whole stream has: terminal is final.
      if (!ok && kv && folded && isTerminalDeployment(kv.state) && kv.lastSeq < folded.lastSeq) {
        const sameStates = folded.state === kv.state && Object.entries(folded.targets).every(([agent, t]) => kv.targets[agent]?.state === t.state);
        ok = sameStates && stable(foldRun(events, id, kv.lastSeq)) === stable(kv);
      }
      if (!ok) last = `fold ${folded?.state}/seq ${folded?.lastSeq} vs KV ${kv?.state}/seq ${kv?.lastSeq}; first difference: ${firstDifference(folded, kv)}`;
    }
    if (!ok) v("kv-equals-fold", `${id}: ${last}`);
  }

  // canary-first: read from the stream alone.
  for (const [id, evs] of events) {
    if (id === "_invalid") continue;
    const rec = foldAll(evs);
    if (!rec || !(rec.spec.strategy.canary ?? 0)) continue;
    checked["canary-first"]++;
    const wave = new Set(canaryTargetsOf(rec));
    const promoted = evs.find((e) => e.event.type === "deployment.promoted");
    for (const e of evs) {
      if (promoted && e.seq >= promoted.seq) break;
      for (const a of dispatchedIdsOf(e.event)) if (!wave.has(a)) v("canary-first", `${id}: ${a} (not a canary) dispatched at seq ${e.seq}, before any promote`);
    }
    if (promoted) {
      const before = foldAll(evs.filter((e) => e.seq < promoted.seq));
      const bad = [...wave].filter((a) => before?.targets[a]?.state !== "SUCCEEDED");
      if (bad.length > 0) v("canary-first", `${id}: promoted at seq ${promoted.seq} while canary ${bad.join(", ")} had not succeeded`);
    }
  }

  // bounded-completion and one-request-one-deployment
  const created = new Map<string, string[]>();
  for (const [id, evs] of events) {
    for (const e of evs) if (e.event.type === "deployment.created" && e.source === "coordinator") created.set(e.event.spec.requestId, [...(created.get(e.event.spec.requestId) ?? []), id]);
  }
  for (const d of run.deployments) {
    checked["one-request-one-deployment"]++;
    const ids = new Set(d.answeredIds);
    const made = created.get(d.requestId) ?? [];
    if (ids.size > 1) v("one-request-one-deployment", `${d.key} (${d.requestId}) was answered with ${[...ids].join(", ")}`);
    if (made.length > 1) v("one-request-one-deployment", `${d.key} (${d.requestId}) created ${made.length} deployments: ${made.join(", ")}`);
    if (d.createError) v("one-request-one-deployment", `${d.key} (${d.requestId}) never answered after ${d.createAttempts} attempts: ${d.createError}`);
    if (!d.id) continue;
    checked["bounded-completion"]++;
    if (d.finishedAtMs === undefined || d.createdAtMs === undefined) {
      v("bounded-completion", `${d.key} ${d.id} is still ${d.state ?? "unknown"}`);
      continue;
    }
    const took = d.finishedAtMs - d.createdAtMs;
    const bound = (d.boundMs ?? 0) + run.outageMs + COMPLETION_SLACK_MS;
    if (took > bound) v("bounded-completion", `${d.key} ${d.id} took ${took} ms, bound ${bound} ms`);
  }
  // poison-skipped: each unreadable message of a deployment not yet finished
  // when it was stored is in a coordinator's log as skipped.
  const logs = stack.coordinators.map((c) => c.logs()).join("\n");
  for (const id of deploymentsOf(events)) {
    const bad = events.unreadable.get(id) ?? [];
    if (bad.length === 0) continue;
    const rec = foldRun(events, id);
    for (const u of bad) {
      if (!rec || (rec.finishedSeq !== undefined && rec.finishedSeq < u.seq)) continue;
      checked["poison-skipped"]++;
      const logged = logs.split("\n").some((l) => l.includes("skipping invalid event") && l.includes(`"seq":${u.seq},`) && l.includes(id));
      if (!logged) v("poison-skipped", `${id}: unreadable message seq ${u.seq} on ${u.source} (${u.why.slice(0, 80)}) was never logged as skipped`);
    }
  }

  // lost-reply-recovered: the agent's started was stored, so it must have
  // gone on to a result (unless another fault hit that agent), or, having
  // learnt it won, to a decline after its start: its look found the
  // deployment cancelled or finished meanwhile (target.declined with
  // afterStart; the target ends CANCELLED or FAILED at once, never left to
  // time out). Seeds 98009 and 98019 cancelled such a deployment.
  // (A poison on its subject counts: after its start, it makes the agent's
  // retry decline rather than read past it.)
  const hitAgain = new Set(run.plan.faults.filter((f) => f.kind !== "lost-race-reply").map((f) => f.on));
  for (const drop of new Map(stack.droppedRaceReplies.map((d) => [`${d.deploymentId}/${d.agentId}`, d])).values()) {
    const evs = events.get(drop.deploymentId) ?? [];
    const started = evs.some((e) => e.source === drop.agentId && e.event.type === "target.started");
    if (!started || hitAgain.has(drop.agentId)) continue;
    checked["lost-reply-recovered"]++;
    const t = foldRun(events, drop.deploymentId)?.targets[drop.agentId];
    const result = evs.some((e) => e.source === drop.agentId && (e.event.type === "target.result" || (e.event.type === "target.declined" && e.event.afterStart === true)));
    if (!result) v("lost-reply-recovered", `${drop.agentId} lost the reply to its stored target.started for ${drop.deploymentId} and never reported a result or a decline after its start (target ${t?.state ?? "?"}: ${t?.message ?? ""})`);
  }

  // interrupted-reported: the start the agent stored before it killed
  // itself (the latest of its target.started before the suite saw it gone)
  // is found again by its nonce after the restart, and reported interrupted
  // (handleCommand.ts), even after the target timed out meanwhile (a late
  // result). Its first race lost: no start before the kill, nothing to check.
  const killed = run.killedBeforeJournal;
  const hitOtherwise = new Set(run.plan.faults.filter((f) => f.kind !== "agent-kill-before-journal").map((f) => f.on));
  if (killed && !hitOtherwise.has(killed.agentId)) {
    let start: { id: string; seq: number; timeMs: number } | undefined;
    for (const [id, evs] of events) {
      for (const e of evs) {
        if (e.source === killed.agentId && e.event.type === "target.started" && e.timeMs <= killed.atMs && (!start || e.timeMs > start.timeMs)) start = { id, seq: e.seq, timeMs: e.timeMs };
      }
    }
    if (start) {
      checked["interrupted-reported"]++;
      const after = (events.get(start.id) ?? []).filter((e) => e.source === killed.agentId && e.seq > start.seq);
      const reported = after.some((e) => e.event.type === "target.result" && e.event.message.startsWith("interrupted: the agent restarted between storing its start and journaling it"));
      if (!reported) v("interrupted-reported", `${killed.agentId} was killed after its start of ${start.id} was stored (seq ${start.seq}) and before its journal record, and did not report it interrupted; after the start it stored: ${after.map((e) => e.event.type).join(", ") || "nothing"}`);
    }
  }

  // kill-reached: a cancel with kill_running reaches each apply in flight
  // through its coordinator's kill notice (queries/cancelDeployment.ts) and
  // the look it asks for: each target whose start won before the cancel was
  // stored, with no result before it, ends killed within KILL_REACH_MS.
  // Only where nothing else stopped the notice or the apply: no coordinator
  // or NATS fault in the run, none on the target's agent.
  const hit = new Set(run.plan.faults.filter((f) => f.injected).map((f) => f.on));
  if (!run.plan.faults.some((f) => f.injected && NOTICE_FAULTS.has(f.kind))) {
    for (const [id, evs] of events) {
      const cancel = evs.find((e) => e.event.type === "deployment.cancel_requested" && e.event.kill === true);
      if (!cancel) continue;
      for (const started of evs.filter((e) => e.event.type === "target.started" && e.seq < cancel.seq && !hit.has(e.source))) {
        const end = evs.find((e) => e.source === started.source && e.seq > started.seq && (e.event.type === "target.result" || e.event.type === "target.declined"));
        if (end && end.seq < cancel.seq) continue;
        checked["kill-reached"]++;
        const message = end?.event.type === "target.result" ? end.event.message : end?.event.type === "target.declined" ? `declined: ${end.event.reason}` : "";
        const afterMs = end ? end.timeMs - cancel.timeMs : undefined;
        if (!end || !message.includes("killed: the deployment was cancelled with kill_running") || afterMs! > KILL_REACH_MS) {
          v("kill-reached", `${id}: ${started.source} was applying when the cancel with kill_running was stored (seq ${cancel.seq}), and ${end ? `ended ${afterMs} ms later: ${message.slice(0, 160)}` : "never ended"}`);
        }
      }
    }
  }

  // server-clock: read from the stream alone (server times on both sides).
  for (const [id, evs] of events) {
    if (id === "_invalid") continue;
    const rec = foldAll(evs);
    if (!rec) continue;
    const st = rec.spec.strategy;
    const created = evs.find((e) => e.event.type === "deployment.created");
    for (const [agent, lastHeartbeat] of Object.entries(rec.spec.offlineTargets ?? {})) {
      checked["server-clock"]++;
      const silent = (created?.timeMs ?? 0) - Date.parse(lastHeartbeat);
      if (silent < AGENT_LIVE_MS) v("server-clock", `${id}: ${agent} skipped as offline at creation, last heard from ${silent} ms before (liveness limit ${AGENT_LIVE_MS} ms)`);
    }
    const dispatchedAt = new Map<string, number>();
    const startedAt = new Map<string, number>();
    for (const e of evs) {
      const ev = e.event;
      // A dispatch with the creation counts from the event's own time, as the fold's createdAt.
      const at = ev.type === "deployment.created" ? Date.parse(ev.time) : e.timeMs;
      for (const a of dispatchedIdsOf(ev)) dispatchedAt.set(a, at);
      if (ev.type === "target.started" && e.source === ev.agentId && !startedAt.has(ev.agentId)) startedAt.set(ev.agentId, e.timeMs);
      if (ev.type !== "target.timed_out") continue;
      // Only timeouts that took effect (the fold says what it timed out).
      const t = rec.targets[ev.agentId];
      if (t?.state !== "TIMED_OUT" || t.message !== ev.message) continue;
      checked["server-clock"]++;
      const from = ev.phase === "delivery" ? dispatchedAt.get(ev.agentId) : startedAt.get(ev.agentId) ?? dispatchedAt.get(ev.agentId);
      // An apply timeout: no result within apply + grace, or no heartbeat for the liveness limit (and ran that long).
      const limit = ev.phase === "delivery" ? st.deliveryTimeoutMs : Math.min(st.applyTimeoutMs + APPLY_GRACE_MS, AGENT_LIVE_MS);
      if (from !== undefined && e.timeMs - from < limit) v("server-clock", `${id}: ${ev.agentId} timed out (${ev.phase}) ${e.timeMs - from} ms after it was ${ev.phase === "delivery" ? "dispatched" : "started"} (limit ${limit} ms; seq ${e.seq})`);
    }
  }

  // oversize-handled: created (its targets chunked to fit; KV == fold and the
  // other checks cover it like any deployment), or refused cleanly.
  if (run.oversize) {
    checked["oversize-handled"]++;
    const o = run.oversize;
    if (o.code !== "OK") {
      if (o.code !== "RESOURCE_EXHAUSTED" || !/max_payload/.test(o.details)) v("oversize-handled", `a create of ${o.targets} targets over max_payload ${run.plan.maxPayload} was answered ${o.code}: ${o.details.slice(0, 200)}`);
      if (created.has(o.requestId)) v("oversize-handled", `the refused create ${o.requestId} wrote deployment(s) ${created.get(o.requestId)!.join(", ")}`);
    } else if (!created.has(o.requestId)) {
      v("oversize-handled", `the create ${o.requestId} of ${o.targets} targets was answered OK but no deployment.created is in the stream`);
    }
  }

  // revert-made: read from the stream alone.
  const records = new Map<string, DeploymentRecord>();
  for (const id of deploymentsOf(events)) {
    const rec = foldRun(events, id);
    if (rec) records.set(id, rec);
  }
  for (const [id, rec] of records) {
    const to = isTerminalDeployment(rec.state) ? revertToOf(rec) : undefined;
    const changed = changedTargetsOf(rec);
    if (!to || changed.length === 0) continue;
    checked["revert-made"]++;
    const reverts = [...records.values()].filter((r) => r.spec.reverts === id);
    if (reverts.length > 1) v("revert-made", `${id} has ${reverts.length} reverts: ${reverts.map((r) => r.spec.id).join(", ")}`);
    const r = reverts[0];
    if (!r) {
      // The lock is given back only once the revert exists; a create of the
      // pair that took it over first is the one way to have none.
      const finishedSeq = rec.finishedSeq ?? Number.POSITIVE_INFINITY;
      const overtaken = [...records.values()].some(
        (o) => o.spec.app === rec.spec.app && o.spec.environment === rec.spec.environment && (events.get(o.spec.id)?.[0]?.seq ?? 0) > finishedSeq,
      );
      if (!overtaken) v("revert-made", `${id} ended ${rec.state} with a revert to ${to.version} due for ${changed.join(", ")}, and none was made`);
      continue;
    }
    if (r.spec.requestId !== `revert.${id}`) v("revert-made", `${r.spec.id} reverts ${id} under request id ${r.spec.requestId}`);
    if (r.spec.changeset.version !== to.version) v("revert-made", `${r.spec.id} (revert of ${id}) installs ${r.spec.changeset.version}, not ${to.version}`);
    const want = [...changed].sort().join(",");
    const got = [...r.spec.targets].sort().join(",");
    if (got !== want) v("revert-made", `${r.spec.id} (revert of ${id}) targets ${got}, not the changed ${want}`);
    if (!isTerminalDeployment(r.state)) v("revert-made", `${r.spec.id} (revert of ${id}) is still ${r.state}`);
  }

  // release-shown: per agent and app, the last SUCCEEDED result in stream
  // order is what the agent runs (one app's applies run one at a time).
  const want = new Map<string, Map<string, string>>();
  const last = new Map<string, number>();
  for (const [id, evs] of events) {
    const app = records.get(id)?.spec.app;
    if (app === undefined) continue;
    for (const e of evs) {
      if (e.event.type !== "target.result" || e.source !== e.event.agentId || e.event.outcome !== "SUCCEEDED") continue;
      const key = `${e.event.agentId} ${app}`;
      if ((last.get(key) ?? 0) > e.seq) continue;
      last.set(key, e.seq);
      const apps = want.get(e.event.agentId) ?? new Map<string, string>();
      want.set(e.event.agentId, apps);
      apps.set(app, id);
    }
  }
  const agentsKv = await new Kvm(nc).open("deploy_agents");
  const shownOf = async (agentId: string): Promise<Record<string, string>> => {
    const e = await retried(() => agentsKv.get(agentId));
    if (!e || e.operation !== "PUT") return {};
    return Object.fromEntries(Object.entries(parseAgentRecord(e.value).releases ?? {}).map(([app, r]) => [app, r.deploymentId]));
  };
  for (const agentId of stack.agents.keys()) {
    const wanted = Object.fromEntries(want.get(agentId) ?? []);
    checked["release-shown"]++;
    let shown = await shownOf(agentId);
    // The write rides on the agent's next heartbeat.
    for (let i = 0; i < 10 && stable(shown) !== stable(wanted); i++) {
      await sleep(HEARTBEAT_MS);
      shown = await shownOf(agentId);
    }
    if (stable(shown) !== stable(wanted)) v("release-shown", `${agentId}'s entry shows ${stable(shown)}; its last succeeded results say ${stable(wanted)}`);
  }

  // current-release: per agent and app, the last SUCCEEDED result of a
  // bundle in stream order names the release `current` points at (a deploy
  // executable's result leaves it alone). Checked only where a bundle ran.
  const installed = new Map<string, { seq: number; release: string }>();
  const bundleApps = new Set<string>();
  for (const [id, evs] of events) {
    const spec = records.get(id)?.spec;
    if (!spec?.changeset.artifact) continue;
    bundleApps.add(spec.app);
    for (const e of evs) {
      if (e.event.type !== "target.result" || e.source !== e.event.agentId || e.event.outcome !== "SUCCEEDED") continue;
      const key = `${e.event.agentId} ${spec.app}`;
      if ((installed.get(key)?.seq ?? 0) > e.seq) continue;
      installed.set(key, { seq: e.seq, release: releaseName(spec.changeset.version, id) });
    }
  }
  for (const agentId of stack.agents.keys()) {
    for (const app of bundleApps) {
      checked["current-release"]++;
      const want = installed.get(`${agentId} ${app}`)?.release;
      const got = await readCurrent(stack.rootOf(agentId), app).catch((err: unknown) => `unreadable: ${String(err)}`);
      if (got !== want) v("current-release", `${agentId}'s ${app} runs ${got ?? "no release"}; its last succeeded install was ${want ?? "none"}`);
    }
  }
  return { violations, nearMisses, checked };
}

/** Where two records first differ (a path and both values, cut short): what a kv-equals-fold violation reports. */
function firstDifference(a: unknown, b: unknown, path = ""): string {
  if (stable(a) === stable(b)) return "none";
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) === !Array.isArray(b)) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) {
      if (stable(ra[k]) !== stable(rb[k])) return firstDifference(ra[k], rb[k], `${path}.${k}`);
    }
  }
  return `${path || "."}: fold ${JSON.stringify(a)?.slice(0, 160)} vs KV ${JSON.stringify(b)?.slice(0, 160)}`;
}
