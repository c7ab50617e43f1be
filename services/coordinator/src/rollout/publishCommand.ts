// Publishes the command for one (deployment, target). Safe to repeat: the
// Nats-Msg-Id drops a repeat inside the duplicate window; one stored later
// (a coordinator that took over a deployment after it, and its target not
// started yet) reaches the agent as a second delivery, which its journal
// answers (the outcome re-reported, nothing run) or, if the journal is gone,
// the target's race refuses. A stream made before the command queue
// (names.ts) refuses such a repeat on a deployment's own subject instead
// ("already-stored"), until its coordinator updates it (infrastructure.ts).
import { headers } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import {
  COMMAND_SCHEMA,
  HDR_AGENT_ID,
  HDR_DEPLOY_ID,
  UnavailableError,
  HDR_SIGNATURE,
  HDR_SIGNER,
  commandMsgId,
  commandSubject,
  encode,
  type Command,
  type CommandSigner,
  type DeploymentSpec,
  type JsContext,
} from "../../../shared/src/index.js";

export type PublishOutcome = "published" | "duplicate" | "already-stored";

/**
 * The start lease a coordinator with liveness limit `agentLiveMs` gives: 90 %
 * of it. The agent starts only if no gap between the send times of its
 * acknowledged heartbeats since its claim exceeds the lease, and the
 * coordinator counts silence from the server's receipt of a heartbeat (no
 * earlier than its send), so the lease needs a margin only for clock rate
 * and the check-to-spawn instant: 10 % is ample. Two thirds (tried first)
 * refused starts on a loaded 2-core machine: one test in a full suite run
 * beside another saw a 2 s gap at a 3 s limit. (A coordinator's wall clock
 * offset from the servers' changes nothing: it judges silence on the
 * servers' clock, serverClock.ts.)
 */
export const startLeaseFor = (agentLiveMs: number): number => Math.max(1, Math.floor(agentLiveMs * 0.9));

/**
 * Whether this coordinator's commands say Command.cancelFenced (the agent
 * makes no look at its deployment before it starts). Its cancels are fenced
 * on the targets' own subjects (plan.ts cancelDecisions); what is left is a
 * command that outlives its target's events: kept shorter than commands
 * (streams.eventsMaxAgeMs below commandsMaxAgeMs), a command held for an
 * agent away that long could find its target's subject emptied by max_age
 * and win a race for a deployment long finished. Those commands ask for the
 * look, whose "deployment does not exist" stops it. Every event of a target
 * is stored after its command, so with events kept at least as long the
 * command always goes first. DEPLOY_COORDINATOR_FAULT_UNFENCED_COMMANDS=1
 * issues the commands of a coordinator from before this (test/faults.test.ts).
 */
export function fencedCancels(s: { eventsMaxAgeMs: number; commandsMaxAgeMs: number }): boolean {
  if (process.env["DEPLOY_COORDINATOR_FAULT_UNFENCED_COMMANDS"] === "1") return false;
  return s.eventsMaxAgeMs === 0 || s.eventsMaxAgeMs >= s.commandsMaxAgeMs;
}

/** `cancelFenced`: this coordinator fences cancels on the targets' subjects (Command.cancelFenced; fencedCancels in coordinator.ts). */
export function buildCommand(spec: DeploymentSpec, agentId: string, startLeaseMs?: number, cancelFenced = false): Command {
  return {
    schema: COMMAND_SCHEMA,
    deploymentId: spec.id,
    agentId,
    app: spec.app,
    environment: spec.environment,
    changeset: spec.changeset,
    applyTimeoutMs: spec.strategy.applyTimeoutMs,
    ...(spec.strategy.ignoreStopFailures ? { ignoreStopFailures: true } : {}),
    ...(startLeaseMs === undefined ? {} : { startLeaseMs }),
    ...(cancelFenced ? { cancelFenced: true } : {}),
    issuedAt: new Date().toISOString(),
  };
}

/**
 * The server's refusal of a second message on a discard-new-per-subject
 * subject: err_code 10077 "maximum messages per subject exceeded" (pinned by
 * test/nats-facts.test.ts; the client has no constant for it).
 */
const MAX_MSGS_PER_SUBJECT_EXCEEDED = 10077;
export function isPerSubjectLimit(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === MAX_MSGS_PER_SUBJECT_EXCEEDED;
}

/**
 * With a signer, the signature covers exactly the payload bytes published
 * (services/shared/src/signing.ts); without one the command goes out
 * unsigned (development only: the coordinator warns at start). `queue`: on
 * the agent's command queue (its entry says commandQueue), not on the
 * deployment's own subject.
 */
export async function publishCommand(
  ctx: Pick<JsContext, "js">,
  spec: DeploymentSpec,
  agentId: string,
  signer?: CommandSigner,
  startLeaseMs?: number,
  cancelFenced = false,
  queue = false,
): Promise<PublishOutcome> {
  const h = headers();
  h.set(HDR_DEPLOY_ID, spec.id);
  h.set(HDR_AGENT_ID, agentId);
  h.set("Content-Type", `application/json; schema=${COMMAND_SCHEMA}`);
  const payload = encode(buildCommand(spec, agentId, startLeaseMs, cancelFenced));
  if (signer) {
    h.set(HDR_SIGNER, signer.publicKey);
    h.set(HDR_SIGNATURE, signer.sign(payload));
  }
  try {
    const ack = await ctx.js.publish(commandSubject(agentId, spec.id, queue), payload, {
      msgID: commandMsgId(spec.id, agentId),
      headers: h,
    });
    return ack.duplicate ? "duplicate" : "published";
  } catch (err) {
    // On a queue the limit is not this command's: an older coordinator made
    // (or updated) the stream with one message per subject, and a second
    // command to the agent is refused while its first is kept. Not sent,
    // so not "already stored": the target waits for its delivery timeout,
    // and the next start of this version updates the stream.
    if (isPerSubjectLimit(err) && queue) {
      throw new UnavailableError(`could not publish the command for ${agentId} of ${spec.id}: DEPLOY_COMMANDS keeps one message per subject (set by a coordinator older than the command queue): upgrade every coordinator`, err);
    }
    if (isPerSubjectLimit(err)) return "already-stored";
    throw new UnavailableError(`could not publish the command for ${agentId} of ${spec.id}`, err);
  }
}
