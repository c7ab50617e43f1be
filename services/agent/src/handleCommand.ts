// One command, applied at most once. The protocol:
//
//   0. with trustedSigners configured, verify the signature of the exact
//      payload bytes before anything else (unsigned, forged, altered or
//      unknown signer: error event, term());
//   1. validate the message (invalid: error event, term(), never redelivered);
//   2. the journal already knows the deployment: re-report what it recorded,
//      run nothing;
//   3. journal "started" (fsync'd) and, at once, race for the target: target.started
//      appended on the target's subject by compare-and-set
//      (js/raceForTarget.ts): lost to a coordinator that timed it out or
//      cancelled it first, the agent declines and runs nothing; found
//      stored by this agent before a restart (the journal part of its
//      nonce, from the journal's key), the apply is reported interrupted
//      and runs nothing;
//   4. won: a look at the deployment (its last coordinator event): being
//      cancelled, finished or gone, the agent declines after its start
//      (target.declined, afterStart) and runs nothing;
//   5. run, journal "finished", report the result (at-least-once, msg id
//      deduplicated), ack.
// A crash anywhere after step 3 leaves a "started" entry that the next start
// reports as interrupted, and never runs again.
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import {
  COORDINATOR_SOURCE,
  DEFAULT_START_LEASE_MS,
  DeployError,
  HDR_CANCEL_REQUESTED,
  HDR_KILL_REQUESTED,
  HDR_EVENT_TYPE,
  EVENTS_STREAM,
  agentEventMsgId,
  agentReleaseOf,
  appendEvent,
  eventSubject,
  lastOnTarget,
  parseEvent,
  raceForTarget,
  errorMessage,
  type RaceNonce,
  isToken,
  parseCommand,
  parseCommandSubject,
  verifySignature,
  type Command,
  type EventBody,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import type { AgentConfig } from "./config.js";
import type { Journal, JournalResult } from "./journal.js";
import type { AgentMetrics } from "./metrics.js";
import { Registration } from "./registration.js";
// apply.js (the bundle code, tar) is loaded at the first apply, not at
// start: an idle agent stays small.
let applyModule: Promise<typeof import("./apply.js")> | undefined;
const loadApply = (): Promise<typeof import("./apply.js")> => (applyModule ??= import("./apply.js"));

export interface HandlerDeps {
  ctx: JsContext;
  config: AgentConfig;
  journal: Journal;
  registration: Registration;
  /** Absent in tools that run agents without metrics. */
  metrics?: AgentMetrics;
  log: Logger;
  /** Aborted past the shutdown grace period: kill the running apply. */
  kill: AbortSignal;
  /**
   * Aborted shutdownWayBackMs after `kill`: what a killed install
   * still may do to go back to the previous release (its start hook), so
   * a shutdown does not leave the app stopped. Absent: `kill`.
   */
  killWayBack?: AbortSignal;
  /** Aborted when the agent starts closing: stop retrying reports (the journal keeps them). */
  closing: AbortSignal;
  /** Absent on a VM. Set by a process that hosts many agents (the bench): see StartAgentOptions.admit. */
  admit?: () => Promise<() => void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Fault injection for the tests and the fault suite, never set in
 * production: the agent stops itself (SIGSTOP) right after winning a claim,
 * as a VM freeze or a long pause would, and goes on when sent SIGCONT. Once
 * per process.
 */
let FAULT_STOP_AFTER_CLAIM = process.env["DEPLOY_AGENT_FAULT_STOP_AFTER_CLAIM"] === "1";
/** The same, never in production: the agent waits this long between its journal and its race, once per process, as a race retried through a leader election does. */
let FAULT_DELAY_RACE_MS = Number(process.env["DEPLOY_AGENT_FAULT_DELAY_RACE_MS"] ?? 0);

/**
 * The same, never in production: the agent kills itself (SIGKILL) once its
 * race is answered and before its journal records the start, the few
 * milliseconds in which a crash leaves a start its journal does not know.
 * Once per state directory (a mark file there), so the restarted agent,
 * with the same environment, goes on.
 */
const FAULT_KILL_BEFORE_JOURNAL = process.env["DEPLOY_AGENT_FAULT_KILL_BEFORE_JOURNAL"] === "1";
const FAULT_KILL_BEFORE_JOURNAL_MARK = "fault-killed-before-journal";

/**
 * The same, never in production: the agent kills itself (SIGKILL) once its
 * apply has returned, before the result's journal record and report: a
 * crash at the end of an install. Once per state directory (a mark file).
 */
const FAULT_KILL_BEFORE_RESULT = process.env["DEPLOY_AGENT_FAULT_KILL_BEFORE_RESULT"] === "1";
const FAULT_KILL_BEFORE_RESULT_MARK = "fault-killed-before-result";

/** The same, never in production: the agent's entry with a new release is not written until this long after its result (a write held up on its way), every time. */
const FAULT_DELAY_RELEASE_WRITE_MS = Number(process.env["DEPLOY_AGENT_FAULT_DELAY_RELEASE_WRITE_MS"] ?? 0);

/** Publishes an agent event, retrying until JetStream acknowledges it or the agent closes. */
export async function report(deps: Pick<HandlerDeps, "ctx" | "config" | "log" | "closing">, deploymentId: string, body: EventBody, kind: string): Promise<number> {
  let delay = 200;
  for (;;) {
    try {
      return await appendEvent(deps.ctx, deploymentId, body, { source: deps.config.id, msgId: agentEventMsgId(deploymentId, deps.config.id, kind) });
    } catch (err) {
      if (deps.closing.aborted) throw err;
      // Refused for good (too large for the server): reported once, not retried for ever.
      if (err instanceof DeployError && !err.retryable) {
        deps.log.error({ deploymentId, type: body.type, err: errorMessage(err) }, "report refused; not retrying");
        throw err;
      }
      deps.log.warn({ deploymentId, type: body.type, err: errorMessage(err) }, "report failed; retrying");
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

async function retrying<T>(deps: Pick<HandlerDeps, "log" | "closing">, fn: () => Promise<T>): Promise<T> {
  let delay = 200;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (deps.closing.aborted) throw err;
      deps.log.warn({ err: errorMessage(err) }, "reading the deployment failed; retrying");
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

export async function reportJournaled(deps: HandlerDeps, deploymentId: string): Promise<void> {
  const entry = deps.journal.get(deploymentId);
  if (!entry) return;
  const agentId = deps.config.id;
  if (entry.status === "finished" && entry.result) {
    await reportResult(deps, deploymentId, entry.result);
  } else if (entry.status === "declined") {
    await reportOutcome(deps, deploymentId, { type: "target.declined", agentId, reason: entry.declineReason ?? "", ...(entry.declinedAfterStart ? { afterStart: true as const } : {}) }, "declined");
  }
}

/**
 * Reports a result, then journals it reported. Its "finished" record may
 * still be on its way to the disk (journal appends keep their order).
 */
function reportResult(deps: HandlerDeps, deploymentId: string, r: JournalResult): Promise<void> {
  const body: EventBody = { type: "target.result", agentId: deps.config.id, outcome: r.outcome, message: r.message, exitCode: r.exitCode, durationMs: r.durationMs, ...(r.rolledBack ? { rolledBack: true } : {}) };
  return reportOutcome(deps, deploymentId, body, "result");
}

async function reportOutcome(deps: HandlerDeps, deploymentId: string, body: EventBody, kind: string): Promise<void> {
  try {
    await report(deps, deploymentId, body, kind);
  } catch (err) {
    // Refused for good by a server limit: journaled as reported, so neither a
    // redelivery nor a restart sends it again (report() logged the refusal).
    // The coordinator times the target out.
    if (!(err instanceof DeployError) || err.retryable) throw err;
  }
  await deps.journal.markReported(deploymentId);
}

/**
 * What a "started" entry found at the agent's start ran to, if its result
 * is stored: the result goes out beside the journal's "finished" record
 * (handleCommand), so a crash between the two leaves the result in the
 * stream and only "started" here. Undefined when the stream has none (or
 * cannot be read): the apply was interrupted.
 */
export async function storedResult(deps: Pick<HandlerDeps, "ctx" | "config">, deploymentId: string): Promise<JournalResult | undefined> {
  const last = await lastOnTarget(deps.ctx, deploymentId, deps.config.id).catch(() => undefined);
  const e = last?.event;
  if (e?.type !== "target.result" || e.agentId !== deps.config.id) return undefined;
  return { outcome: e.outcome, message: e.message, exitCode: e.exitCode, durationMs: e.durationMs, finishedAt: e.time, ...(e.rolledBack ? { rolledBack: true } : {}) };
}

async function reject(deps: HandlerDeps, m: JsMsg, error: string): Promise<void> {
  // The deployment named by its subject, else by the payload if that reads
  // (a queue's command whose signature or shape is wrong), else none.
  const parsed = parseCommandSubject(m.subject);
  const named = parsed?.deploymentId ?? payloadDeploymentId(m.data);
  const deploymentId = named !== undefined && isToken(named) ? named : "_invalid";
  deps.log.warn({ subject: m.subject, error }, "rejecting command");
  try {
    await appendEvent(deps.ctx, deploymentId, { type: "agent.rejected_message", agentId: deps.config.id, subject: m.subject.slice(0, 1024), error: error.slice(0, 4096) }, { source: deps.config.id });
  } catch (err) {
    deps.log.warn({ err: errorMessage(err) }, "could not report the rejected message");
  }
  deps.metrics?.rejected.inc();
  // The reason shows in the server's $JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED
  // advisory (2.10+; 2.9 ignored "+TERM <reason>" and redelivered).
  m.term(error.slice(0, 256));
}

/** The deploymentId field of a payload that may be neither valid nor signed: only to say where a rejection belongs. */
function payloadDeploymentId(data: Uint8Array): string | undefined {
  try {
    const id = (JSON.parse(new TextDecoder().decode(data)) as { deploymentId?: unknown }).deploymentId;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

function validate(deps: HandlerDeps, m: JsMsg): Command | string {
  // First: nothing of an unverified payload is parsed or believed.
  if (deps.config.trustedSigners.length > 0) {
    const v = verifySignature(m.data, m.headers, deps.config.trustedSigners);
    if (!v.ok) return v.error;
  }
  let cmd: Command;
  try {
    cmd = parseCommand(m.data);
  } catch (err) {
    return errorMessage(err);
  }
  // On the agent's queue the payload alone names the deployment (a signed
  // one included); on a deployment's own subject the two must agree.
  const subj = parseCommandSubject(m.subject);
  if (!subj || subj.agentId !== deps.config.id || (subj.deploymentId !== undefined && subj.deploymentId !== cmd.deploymentId)) {
    return `subject ${m.subject} does not match the command (deployment ${cmd.deploymentId})`;
  }
  if (cmd.agentId !== deps.config.id) return `command is addressed to agent ${cmd.agentId}, not ${deps.config.id}`;
  return cmd;
}

async function decline(deps: HandlerDeps, deploymentId: string, reason: string, afterStart = false): Promise<void> {
  deps.log.info({ deploymentId, reason, afterStart }, "declining command");
  deps.metrics?.declined.inc();
  await deps.journal.markDeclined(deploymentId, reason, afterStart);
  await reportJournaled(deps, deploymentId);
}

/**
 * The deployment's last coordinator event: one direct get, which names the
 * subject in its request subject, so the agent's permissions allow it
 * coordinator events only (not other agents' output). The look before the
 * start and the kill watch during the apply both read it.
 */
function lastCoordinatorEvent(deps: HandlerDeps, deploymentId: string): ReturnType<HandlerDeps["ctx"]["jsm"]["direct"]["getMessage"]> {
  return deps.ctx.jsm.direct.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject(deploymentId, COORDINATOR_SOURCE) });
}

/**
 * The look after the race: the deployment's last coordinator event (one
 * direct get). Undefined when the won start may run.
 *
 * A cancel requested stops a target whose start won here, not only when a
 * coordinator wins the target's race first: the coordinator appends its
 * target.cancelled after the request (a slow one well after), and a cancel
 * lets a start stored before it finish. Asked after the start was stored,
 * the look sees every cancel requested before that start.
 */
async function whyNot(deps: HandlerDeps, cmd: Command): Promise<string | undefined> {
  const m = await lastCoordinatorEvent(deps, cmd.deploymentId);
  if (!m) return "deployment does not exist";
  // Any coordinator decision after a cancel request carries it (names.ts).
  if (m.header?.get(HDR_CANCEL_REQUESTED) === "true") return "the deployment is being cancelled: not started";
  // The type is in a header (appendEvent.ts): the body is parsed only for a
  // finished deployment's state. In a fan-out the last coordinator event is
  // a dispatch naming up to 1,000 targets, which every agent's look used to
  // parse and validate id by id (fan-out 1,000: 8 % of an agent host's CPU).
  const header = m.header?.get(HDR_EVENT_TYPE) ?? "";
  let last: ReturnType<typeof parseEvent> | undefined;
  if (header === "" || header === "deployment.finished") {
    try {
      last = parseEvent(m.data);
    } catch {
      // an unreadable event decides nothing here: the claim still does
    }
  }
  if (last?.type === "deployment.finished") return `deployment is already ${last.state}`;
  const type = header || last?.type;
  if (type === "deployment.cancel_requested" || type === "target.cancelled") return "the deployment is being cancelled: not started";
  return undefined;
}

/** A running apply's kill: `signal` aborts, its reason the result's message, when a cancel with kill_running is seen. */
export interface KillWatch {
  readonly signal: AbortSignal;
  stop(): void;
}

/**
 * After a coordinator's kill notice (registration.ts): looks now, and again
 * after these delays (ms) while none found the kill. The notice follows the
 * stored cancel, but a look answered by a replica behind the stream's leader
 * (direct get) may not see it yet.
 */
const KILL_NOTICE_LOOKS_MS = [0, 500, 2000];

/**
 * After a reconnect: one look, at a random moment within this many ms. A
 * notice missed while cut off was sent before the reconnect, so a replica
 * has had that long to catch up and one look that reads is enough; and
 * after a server restart every applying agent reconnects at once (10,000
 * applying agents with the three looks of a notice would make 30,000 direct
 * gets in 2 s; now 10,000 spread over a second).
 */
const RECONNECT_LOOK_SPREAD_MS = 1000;

/**
 * A look after a reconnect that could not read (a restarted server's
 * JetStream still recovering its streams, a stream without a leader yet)
 * is made again after these delays (ms), until one reads.
 */
const RECONNECT_LOOK_RETRIES_MS = [1000, 2000, 4000, 8000];

/**
 * While the apply runs, a look at the deployment's last coordinator event,
 * as the look before the start reads it; once it carries HDR_KILL_REQUESTED
 * (a cancel with kill_running, and every coordinator event after it),
 * `signal` aborts and the apply's process group is killed. A look is made
 * when a coordinator's kill notice names the deployment
 * (KILL_NOTICE_LOOKS_MS), also one that came after the claim and before
 * this watch, once after a reconnect (a notice may have been missed:
 * RECONNECT_LOOK_SPREAD_MS; again while it cannot read), and every
 * config.killLookMs (the first that long after the
 * start, so a short apply makes none): the backstop for a notice that was
 * never sent (a coordinator that stopped between storing the cancel and
 * sending it, or one from before the notice). A failed look is tried again
 * at the next one.
 */
export function watchForKill(deps: HandlerDeps, deploymentId: string, claimAt: number, log: Logger): KillWatch {
  const ac = new AbortController();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const noticeTimers = new Set<NodeJS.Timeout>();
  const done = (): boolean => stopped || ac.signal.aborted;
  /** Resolves false when the deployment could not be read. */
  const look = async (): Promise<boolean> => {
    let m: Awaited<ReturnType<typeof lastCoordinatorEvent>>;
    try {
      m = await lastCoordinatorEvent(deps, deploymentId);
    } catch {
      return false;
    }
    if (done() || m?.header?.get(HDR_KILL_REQUESTED) !== "true") return true;
    let by: string | undefined;
    try {
      const e = parseEvent(m.data);
      by = e.type === "deployment.cancel_requested" ? e.by : undefined;
    } catch {
      // who asked is only for the message
    }
    log.warn({ by }, "the deployment was cancelled with kill_running: killing the apply");
    ac.abort(`killed: the deployment was cancelled with kill_running${by ? ` by ${by}` : ""}`);
    return true;
  };
  const after = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      noticeTimers.delete(t);
      if (!done()) fn();
    }, ms);
    t.unref();
    noticeTimers.add(t);
  };
  /** One look after a reconnect, made again while it cannot read (RECONNECT_LOOK_RETRIES_MS). */
  const lookAfterReconnect = (retry: number): void =>
    void look().then((read) => {
      const next = RECONNECT_LOOK_RETRIES_MS[retry];
      if (!read && next !== undefined) after(next, () => lookAfterReconnect(retry + 1));
    });
  const tick = (): void => {
    timer = setTimeout(() => void look().finally(() => !done() && tick()), deps.config.killLookMs);
    timer.unref();
  };
  if (deps.config.killLookMs > 0) tick();
  const unwatch = deps.registration.onKillNotice(deploymentId, claimAt, (why) => {
    if (done()) return;
    if (why === "reconnect") after(Math.random() * RECONNECT_LOOK_SPREAD_MS, () => lookAfterReconnect(0));
    else for (const ms of KILL_NOTICE_LOOKS_MS) after(ms, () => void look());
  });
  return {
    signal: ac.signal,
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const t of noticeTimers) clearTimeout(t);
      unwatch();
    },
  };
}

/**
 * When in-progress acks (+WPI) go out while a command is handled, so the
 * server does not redeliver it after ack_wait. The server counts ack_wait
 * from its delivery, which the agent does not see: it is no earlier than
 * the command was stored (m.time), and may be well before its handler ran
 * (in the bench's rollout to 10,000 agents, 2,500 in a process, counted
 * from the handler's start the first in-progress ack reached the server
 * 22.7 s (p50) and 29.5 s (p90) after the delivery against an ack_wait of
 * 30 s, and a quarter of the commands were delivered twice; counted from
 * the store, none). So the first goes `everyMs` after the store (at once
 * when that is past), and each next one `everyMs` after the last, leaving
 * `ackWaitMs - everyMs` for the agent's event loop to be late: half of
 * ack_wait up to 20 s, 10 s up to 30 s (the default: every 20 s), a third
 * above. A command handled within `everyMs` of its store, as usual, costs
 * none; a late ack costs a redelivery, which the journal answers (a
 * re-report and an ack), and nothing runs again.
 *
 * The first is never later than `everyMs` from the handler's start: an
 * agent whose clock is behind the server's would otherwise put it off by
 * as much (the fault suite's clock-offset).
 */
export function inProgressSchedule(ackWaitMs: number, storedAt: number, now: number): { firstMs: number; everyMs: number } {
  const margin = Math.max(ackWaitMs / 3, Math.min(ackWaitMs / 2, 10_000));
  const everyMs = Math.max(1000, Math.floor(ackWaitMs - margin));
  return { firstMs: Math.min(everyMs, Math.max(0, storedAt + everyMs - now)), everyMs };
}

function keepInProgress(m: JsMsg, ackWaitMs: number): () => void {
  const { firstMs, everyMs } = inProgressSchedule(ackWaitMs, m.time.getTime(), Date.now());
  let timer: NodeJS.Timeout;
  const tick = (): void => {
    m.working();
    timer = setTimeout(tick, everyMs);
  };
  timer = setTimeout(tick, firstMs);
  return () => clearTimeout(timer);
}

export async function handleCommand(deps: HandlerDeps, m: JsMsg): Promise<void> {
  const { journal, log } = deps;
  const stopInProgress = keepInProgress(m, deps.config.ackWaitMs);
  let unbusy: (() => void) | undefined;
  let unadmit: (() => void) | undefined;
  try {
    if (m.redelivered) deps.metrics?.redeliveries.inc();
    const cmd = validate(deps, m);
    if (typeof cmd === "string") return await reject(deps, m, cmd);
    // The apply code loads (once: 2-3 ms, and the bundle code 24-33 ms more
    // for a changeset with an artifact) while the journal, the race and the
    // look below wait on the disk and the network.
    void loadApply()
      .then((a) => (cmd.changeset.artifact ? a.loadBundleCode() : undefined))
      .catch(() => undefined);
    const id = cmd.deploymentId;
    const dlog = log.child({ deploymentId: id });

    const known = journal.get(id);
    if (known) {
      if (known.status === "started") {
        // Only reachable if recovery at start did not run; never run it again.
        await journal.markFinished(id, interrupted("found started without a result"));
      }
      deps.metrics?.journalHits.inc({ status: known.status });
      // An outcome the stream acknowledged is stored: sending it again
      // would only be deduplicated (a redelivery of a command whose in-
      // progress acks came late: at fan-out 10,000 in the bench, 1.1 per
      // target, each a publish and its reply).
      // (Gone only if a compaction dropped it, which it does only to reported entries.)
      if (journal.get(id)?.reported ?? true) {
        dlog.info({ status: known.status, redelivered: m.redelivered }, "command already in journal, its outcome reported: running nothing");
      } else {
        dlog.info({ status: known.status, redelivered: m.redelivered }, "command already in journal: re-reporting, running nothing");
        await reportJournaled(deps, id);
      }
      m.ack();
      return;
    }

    const app = deps.config.apps[cmd.app];
    const local = cmd.environment !== deps.config.environment
      ? `this agent is in environment ${deps.config.environment}, not ${cmd.environment}`
      : !app
        ? `app ${cmd.app} is not configured on this agent`
        : undefined;
    if (local !== undefined) {
      await decline(deps, id, local);
      m.ack();
      return;
    }

    // Not before the journal: a redelivery answered from it never waits.
    unadmit = await deps.admit?.();
    // The journal's started record (fsync'd) and the race go out together,
    // and nothing runs before both are done: from the record on, a crash
    // reports this apply interrupted and never runs it. The race decides,
    // once, between this agent starting and a coordinator timing out or
    // cancelling. Run one after the other, the fsync waited in front of
    // the race (sequential 10 traced: 1.9 ms from the command's delivery
    // to the race's publish). A crash after the race is stored and before
    // the record is durable ran nothing: the redelivered command's race
    // finds that start by its nonce (`earlier`, below) and the apply is
    // reported interrupted at once.
    const recordStart = (): Promise<Error | undefined> =>
      journal.markStarted(id, { app: cmd.app, ...agentReleaseOf(cmd.deploymentId, cmd.changeset) }).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
    const killMark = FAULT_KILL_BEFORE_JOURNAL ? join(deps.config.stateDir, FAULT_KILL_BEFORE_JOURNAL_MARK) : undefined;
    const journaled = killMark !== undefined && !existsSync(killMark) ? undefined : recordStart();
    if (FAULT_DELAY_RACE_MS > 0) {
      dlog.info({ ms: FAULT_DELAY_RACE_MS }, "fault: delaying the race");
      await sleep(FAULT_DELAY_RACE_MS);
      FAULT_DELAY_RACE_MS = 0;
    }
    // One nonce for every retry of this race: a retry after a lost reply
    // recognises the started event its first try stored. Its journal part,
    // derived from the journal's key, is the same after a restart, so a
    // restarted agent recognises a start its earlier run stored (`earlier`).
    const nonce: RaceNonce = { journal: journal.startNonce(deps.config.id, id), attempt: randomBytes(12).toString("base64url") };
    // The start lease counts from before the race is run (the earlier, the
    // safer): see Registration.leaseProblem.
    const claimAt = performance.now();
    // The race expects the target's subject to be empty, without reading it
    // first: nothing is written there before the agent starts but a
    // coordinator's timeout or cancel (which must make the start fail) or an
    // earlier attempt's event, and either makes the append conflict, after
    // which raceForTarget reads what is there. One direct get less per
    // target.
    let last: Awaited<ReturnType<typeof lastOnTarget>> = { seq: 0 };
    const race = await retrying(deps, async () => {
      try {
        return await raceForTarget(deps.ctx, id, deps.config.id, nonce, last);
      } catch (err) {
        // Unknown whether it was stored: look again before the retry.
        last = await lastOnTarget(deps.ctx, id, deps.config.id);
        throw err;
      }
    }).finally(() => journaled);
    if (journaled === undefined && killMark !== undefined) {
      dlog.warn("fault: killed between the race and its journal record");
      writeFileSync(killMark, "");
      process.kill(process.pid, "SIGKILL");
    }
    const journalFailed = await (journaled ?? recordStart());
    if (journalFailed !== undefined) {
      // Nothing runs without the record. A start already stored is ended
      // at once, with the reason, rather than at its apply timeout (best
      // effort: nothing journals this report).
      if (race.won) {
        await report(deps, id, { type: "target.declined", agentId: deps.config.id, reason: `could not journal the start: ${errorMessage(journalFailed)}`.slice(0, 1024), afterStart: true }, "declined").catch(() => undefined);
      }
      throw journalFailed;
    }
    if (!race.won) {
      await decline(deps, id, race.reason);
      m.ack();
      return;
    }
    if (race.earlier) {
      // This agent stored the start before a restart, and crashed before
      // its journal recorded it, so before anything ran (the apply starts
      // only after the record): reported interrupted now, as a crash after
      // the record is, rather than declined and left to its apply timeout.
      // Not run now: the start and its lease are the earlier run's.
      dlog.warn("the agent restarted after storing its start and before journaling it: nothing ran; reporting it interrupted");
      await journal.markFinished(id, interrupted("the agent restarted between storing its start and journaling it, before the apply began"));
      await reportJournaled(deps, id);
      m.ack();
      return;
    }
    // Won, and target.started is stored: the apply may start, within the lease.
    const confirmedAt = performance.now();
    // Until the result: heartbeats are stored, the lease's evidence (registration.ts).
    unbusy = deps.registration.busy(claimAt);
    // The look comes after the race, not before it or beside the journal
    // as it used to: a look before the race missed a cancel requested
    // between the two (chaos seed 81043: a race retried through a leader
    // election won 418 ms after a cancel request, and ran), so a race won
    // more than 100 ms after its look was looked at again, which at
    // fan-out 1,000 was every race: two looks a target. One look, after,
    // closes that gap whatever the race took. A failed look is asked once
    // more, then objects to nothing: the race decided, and the lease still
    // bounds the start.
    //
    // A command that says cancelFenced needs no look: its coordinator
    // stored a target.cancelled on this target's subject before any cancel
    // request (rollout/plan.ts cancelDecisions), and a deployment finishes
    // only once every dispatched target's subject holds its end, so the race
    // just won already decided against both. One direct get and one round
    // trip less a target.
    const why = cmd.cancelFenced
      ? undefined
      : await whyNot(deps, cmd)
          .catch(() => whyNot(deps, cmd))
          .catch((err: unknown) => void dlog.debug({ err: errorMessage(err) }, "could not look at the deployment; the race decided"));
    if (why !== undefined) {
      await decline(deps, id, why, true);
      m.ack();
      return;
    }

    dlog.info({ app: cmd.app, version: cmd.changeset.version, artifact: cmd.changeset.artifact?.digest }, "applying");
    const { applyCommand, endInstall } = await loadApply();
    if (FAULT_STOP_AFTER_CLAIM) {
      FAULT_STOP_AFTER_CLAIM = false;
      process.kill(process.pid, "SIGSTOP");
    }
    const leaseMs = cmd.startLeaseMs ?? DEFAULT_START_LEASE_MS;
    const late = Registration.confirmationProblem(claimAt, confirmedAt, leaseMs);
    const killed = watchForKill(deps, cmd.deploymentId, claimAt, dlog);
    const result = await applyCommand(deps, cmd, app!, () => late ?? deps.registration.leaseProblem(claimAt, leaseMs), claimAt, killed).finally(() => killed.stop());
    if (FAULT_KILL_BEFORE_RESULT && !existsSync(join(deps.config.stateDir, FAULT_KILL_BEFORE_RESULT_MARK))) {
      dlog.warn({ outcome: result.outcome }, "fault: killed between the apply and its result's record");
      writeFileSync(join(deps.config.stateDir, FAULT_KILL_BEFORE_RESULT_MARK), "");
      process.kill(process.pid, "SIGKILL");
    }
    // The entry with the new release is written at the agent's next
    // heartbeat, which it replaces (registration.ts), not beside the
    // result: one stored write less per target while a deployment rolls
    // out (sequential 100 made 6.13 messages a target with it). The
    // coordinator that folds the results notes each succeeded target's
    // release before it stores the finished event (rollout/reconciler.ts),
    // for agentLiveMs, longer than any heartbeat interval, so a terminal
    // deployment's agents show on its release there at once; other
    // coordinators see it with the write, within one heartbeat interval.
    // Convergence acts only on an entry written after the desired release
    // succeeded (releases/convergence.ts): every write of the entry sent
    // before the new release is answered before the result goes out. A
    // crash before the write loses nothing: the journal's started record
    // names the release, and a restart takes it from there (agent.ts).
    if (result.outcome === "SUCCEEDED") deps.registration.setCurrentRelease(cmd.app, agentReleaseOf(cmd.deploymentId, cmd.changeset), FAULT_DELAY_RELEASE_WRITE_MS);
    // The result goes out beside the journal's "finished" record, not after
    // its fsync (which waited in front of it: sequential 10 traced). A
    // crash between the two leaves "started" here and the result in the
    // stream, which the next start finds (agent.ts, storedResult) instead
    // of reporting the apply interrupted.
    // A bundle installed: its record of the install in progress goes once
    // the success is journaled (apply.ts endInstall), not before: a crash
    // in between goes back to the previous release at the restart, as the
    // interrupted result it then reports says.
    const finished = journal.markFinished(id, result).then(() => (cmd.changeset.artifact && result.outcome === "SUCCEEDED" ? endInstall(deps, cmd) : undefined));
    finished.catch(() => undefined); // awaited below
    await deps.registration.settled();
    dlog.info({ outcome: result.outcome, message: result.message, rolledBack: result.rolledBack }, "apply finished");
    deps.metrics?.applies.inc({ outcome: result.outcome });
    deps.metrics?.applyDuration.observe({ outcome: result.outcome }, result.durationMs / 1000);
    await Promise.all([finished, reportResult(deps, id, result)]);
    m.ack();
  } finally {
    stopInProgress();
    unbusy?.();
    unadmit?.();
  }
}

/** The result of an apply cut short by a crash; `back`: what going back to the previous release did (recovery.ts). */
export function interrupted(why: string, back?: string): JournalResult {
  return { outcome: "FAILED", message: `interrupted: ${why}; not run again${back ? `; ${back}` : ""}`, exitCode: null, durationMs: 0, finishedAt: new Date().toISOString() };
}
