// One command, applied at most once. The protocol:
//
//   1. validate the message (invalid: error event, term(), never redelivered);
//   2. the journal already knows the deployment: re-report what it recorded,
//      run nothing;
//   3. the deployment must still be active and this target DISPATCHED;
//   4. journal "started" (fsync'd), then claim with a target.started event;
//   5. read the fold back: only if this very started event moved the target
//      to APPLYING does anything run (a cancel or timeout that reached the
//      stream first wins, and the agent declines);
//   6. run, journal "finished", report the result (at-least-once, msg id
//      deduplicated), ack.
// A crash anywhere after step 4 leaves a "started" entry that the next start
// reports as interrupted, and never runs again.
import type { JsMsg } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import {
  agentEventMsgId,
  appendEvent,
  errorMessage,
  isTerminalDeployment,
  isToken,
  loadDeployment,
  parseCommand,
  parseCommandSubject,
  type Command,
  type EventBody,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import type { AgentConfig } from "./config.js";
import type { Journal, JournalResult } from "./journal.js";
import type { Registration } from "./registration.js";
import { applyCommand, releaseName } from "./apply.js";

export interface HandlerDeps {
  ctx: JsContext;
  /** deploy_artifacts, for changesets with a bundle. */
  artifacts: ObjectStore;
  config: AgentConfig;
  journal: Journal;
  registration: Registration;
  log: Logger;
  /** Aborted past the shutdown grace period: kill the running apply. */
  kill: AbortSignal;
  /** Aborted when the agent starts closing: stop retrying reports (the journal keeps them). */
  closing: AbortSignal;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Publishes an agent event, retrying until JetStream acknowledges it or the agent closes. */
export async function report(deps: Pick<HandlerDeps, "ctx" | "config" | "log" | "closing">, deploymentId: string, body: EventBody, kind: string): Promise<number> {
  let delay = 200;
  for (;;) {
    try {
      return await appendEvent(deps.ctx, deploymentId, body, { source: deps.config.id, msgId: agentEventMsgId(deploymentId, deps.config.id, kind) });
    } catch (err) {
      if (deps.closing.aborted) throw err;
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
    const r = entry.result;
    await report(
      deps,
      deploymentId,
      { type: "target.result", agentId, outcome: r.outcome, message: r.message, exitCode: r.exitCode, durationMs: r.durationMs, ...(r.rolledBack ? { rolledBack: true } : {}) },
      "result",
    );
  } else if (entry.status === "declined") {
    await report(deps, deploymentId, { type: "target.declined", agentId, reason: entry.declineReason ?? "" }, "declined");
  } else {
    return;
  }
  await deps.journal.markReported(deploymentId);
}

async function reject(deps: HandlerDeps, m: JsMsg, error: string): Promise<void> {
  const parsed = parseCommandSubject(m.subject);
  const deploymentId = parsed && isToken(parsed.deploymentId) ? parsed.deploymentId : "_invalid";
  deps.log.warn({ subject: m.subject, error }, "rejecting malformed command");
  try {
    await appendEvent(deps.ctx, deploymentId, { type: "agent.rejected_message", agentId: deps.config.id, subject: m.subject.slice(0, 1024), error: error.slice(0, 4096) }, { source: deps.config.id });
  } catch (err) {
    deps.log.warn({ err: errorMessage(err) }, "could not report the rejected message");
  }
  // No reason: nats-server 2.9 ignores "+TERM <reason>" and redelivers.
  m.term();
}

function validate(deps: HandlerDeps, m: JsMsg): Command | string {
  let cmd: Command;
  try {
    cmd = parseCommand(m.data);
  } catch (err) {
    return errorMessage(err);
  }
  const subj = parseCommandSubject(m.subject);
  if (!subj || subj.agentId !== deps.config.id || subj.deploymentId !== cmd.deploymentId) {
    return `subject ${m.subject} does not match the command (deployment ${cmd.deploymentId})`;
  }
  if (cmd.agentId !== deps.config.id) return `command is addressed to agent ${cmd.agentId}, not ${deps.config.id}`;
  return cmd;
}

async function decline(deps: HandlerDeps, deploymentId: string, reason: string): Promise<void> {
  deps.log.info({ deploymentId, reason }, "declining command");
  await deps.journal.markDeclined(deploymentId, reason);
  await reportJournaled(deps, deploymentId);
}

/** Why the target may not start now, or undefined when it may. */
async function whyNot(deps: HandlerDeps, cmd: Command, startedSeq?: number): Promise<string | undefined> {
  const loaded = await loadDeployment(deps.ctx, cmd.deploymentId);
  if (!loaded) return "deployment does not exist";
  const rec = loaded.record;
  const t = rec.targets[deps.config.id];
  if (!t) return "this agent is not a target of the deployment";
  if (startedSeq !== undefined) {
    // The fold is deterministic: the target's startedSeq is set once, by the
    // started event that won, and never changes.
    return t.startedSeq === startedSeq ? undefined : `claim refused: target is ${t.state}${rec.cancelRequested ? " (deployment cancelled)" : ""}`;
  }
  if (isTerminalDeployment(rec.state)) return `deployment is already ${rec.state}`;
  if (rec.cancelRequested) return "deployment was cancelled";
  if (t.state !== "DISPATCHED") return `target is ${t.state}`;
  return undefined;
}

export async function handleCommand(deps: HandlerDeps, m: JsMsg): Promise<void> {
  const { journal, log } = deps;
  const wip = setInterval(() => m.working(), Math.max(1000, Math.floor(deps.config.ackWaitMs / 3)));
  try {
    const cmd = validate(deps, m);
    if (typeof cmd === "string") return await reject(deps, m, cmd);
    const id = cmd.deploymentId;
    const dlog = log.child({ deploymentId: id });

    const known = journal.get(id);
    if (known) {
      if (known.status === "started") {
        // Only reachable if recovery at start did not run; never run it again.
        await journal.markFinished(id, interrupted("found started without a result"));
      }
      dlog.info({ status: known.status, redelivered: m.redelivered }, "command already in journal: re-reporting, running nothing");
      await reportJournaled(deps, id);
      m.ack();
      return;
    }

    const app = deps.config.apps[cmd.app];
    const pre = cmd.environment !== deps.config.environment
      ? `this agent is in environment ${deps.config.environment}, not ${cmd.environment}`
      : !app
        ? `app ${cmd.app} is not configured on this agent`
        : await whyNot(deps, cmd);
    if (pre !== undefined) {
      await decline(deps, id, pre);
      m.ack();
      return;
    }

    await journal.markStarted(id);
    const startedSeq = await report(deps, id, { type: "target.started", agentId: deps.config.id }, "started");
    // Between the claim and the run a NATS hiccup must not turn into a
    // failure: retry the read (the journal already says "started", so a
    // redelivery would report this target interrupted).
    const lost = await retrying(deps, () => whyNot(deps, cmd, startedSeq));
    if (lost !== undefined) {
      await decline(deps, id, lost);
      m.ack();
      return;
    }

    dlog.info({ app: cmd.app, version: cmd.changeset.version, artifact: cmd.changeset.artifact?.digest }, "applying");
    const result = await applyCommand(deps, cmd, app!);
    await journal.markFinished(id, result);
    dlog.info({ outcome: result.outcome, message: result.message, rolledBack: result.rolledBack }, "apply finished");
    if (result.outcome === "SUCCEEDED") {
      deps.registration.setCurrentRelease(cmd.app, releaseName(cmd));
      // Before the result: once the deployment is terminal, ListAgents shows the new release.
      await deps.registration.beat().catch((err: unknown) => dlog.warn({ err: errorMessage(err) }, "heartbeat failed"));
    }
    await reportJournaled(deps, id);
    m.ack();
  } finally {
    clearInterval(wip);
  }
}

export function interrupted(why: string): JournalResult {
  return { outcome: "FAILED", message: `interrupted: ${why}; not run again`, exitCode: null, durationMs: 0, finishedAt: new Date().toISOString() };
}
