// The per-target race: exactly one of "its agent starts it" and "a
// coordinator times it out (delivery) or cancels it" is stored, decided by
// the server. Both sides append to the target's own subject,
// deploy.evt.<deployment>.<agent>, with the sequence of the last message they
// know there as the expected last subject sequence: the first append wins,
// the other is refused ("wrong last sequence") and its writer reads what won.
// The agent's append is its target.started event (with a nonce that tells
// its own event from another attempt's when a reply is lost), so winning
// costs it one round trip and no other write; the coordinator's is its decision
// (rollout/reconciler.ts). A claims bucket decided this before, beside the
// stream: the truth of a target lived in two places.
import { EVENTS_STREAM, eventSubject } from "../names.js";
import { ConflictError, UnavailableError } from "../errors.js";
import { parseEvent, type DeployEvent } from "../schemas.js";
import { appendEvent } from "./appendEvent.js";
import type { JsContext } from "./context.js";

export type RaceOutcome =
  /**
   * `earlier`: the start was found stored with this nonce before any
   * append of this race (RaceState) could have stored it: an earlier run
   * of the agent stored it, with the same journal (journal.ts startNonce).
   */
  | { won: true; seq: number; earlier?: true }
  | { won: false; reason: string };

/** What a race's appends may have stored, kept across the caller's retries of one race. */
export interface RaceState {
  /** An append of this race failed without an answer: it may be stored. */
  mayHaveStored: boolean;
}

/**
 * The last message on the target's own subject: its sequence (0: none) and
 * event, or `unreadable` when it is no event. A direct get (the subject read is in the request
 * subject, so an agent's permissions can allow its own subjects only); any
 * replica answers it, and one that trails the leader only makes the append
 * after it conflict and look again.
 */
export async function lastOnTarget(ctx: Pick<JsContext, "jsm">, deploymentId: string, agentId: string): Promise<{ seq: number; event?: DeployEvent; unreadable?: true }> {
  const m = await ctx.jsm.direct.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject(deploymentId, agentId) });
  if (!m) return { seq: 0 };
  try {
    return { seq: m.seq, event: parseEvent(m.data) };
  } catch {
    return { seq: m.seq, unreadable: true };
  }
}

/** Why a target whose subject ends with `e` cannot be started by its agent; undefined when it can (nothing decided there yet). */
function decided(e: DeployEvent | undefined, nonce: string): RaceOutcome | undefined {
  if (!e) return undefined;
  switch (e.type) {
    case "target.started":
      return e.nonce === nonce ? undefined : { won: false, reason: "this target was already started by this agent (journal lost?): not run again" };
    case "target.timed_out":
      return { won: false, reason: "the target timed out before this agent started it" };
    case "target.cancelled":
      return { won: false, reason: "the target was cancelled before this agent started it" };
    case "target.result":
    case "target.progress":
      return { won: false, reason: "this target already ran on this agent (journal lost?): not run again" };
    default:
      // A decline or a rejected message of an earlier attempt decides nothing.
      return undefined;
  }
}

/**
 * The agent's attempt to start (deployment, agent): appends target.started
 * after `known` (the last message it read on the subject). A retry with the
 * same nonce after a lost reply (the same `state`) finds its own event and
 * wins; found when no append of `state` can have stored it, it is an
 * earlier run's (`earlier`).
 */
export async function raceForTarget(
  ctx: Pick<JsContext, "js" | "jsm"> & Partial<Pick<JsContext, "nc">>,
  deploymentId: string,
  agentId: string,
  nonce: string,
  known: { seq: number; event?: DeployEvent; unreadable?: true },
  state: RaceState = { mayHaveStored: false },
): Promise<RaceOutcome> {
  let last = known;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (last.event?.type === "target.started" && last.event.nonce === nonce) return { won: true, seq: last.seq, ...(state.mayHaveStored ? {} : { earlier: true as const }) };
    // An unreadable last message may hide a timeout or a cancel before it
    // (the agent can read only the last message of its subject), and an
    // append expecting its sequence would win over that decision: the
    // agent ran a target already TIMED_OUT (test/faults.test.ts). Not
    // started; the target fails with this reason (or times out).
    if (last.unreadable) return { won: false, reason: `the last message on this target's subject (sequence ${last.seq}) is unreadable and may hide a timeout or cancel: not started` };
    const no = decided(last.event, nonce);
    if (no) return no;
    try {
      // No message id: the server would answer a duplicate of an earlier
      // attempt's id (a lost journal, a redelivery) as stored, and this
      // attempt would take it for its own. The nonce tells instead.
      const seq = await appendEvent(ctx, deploymentId, { type: "target.started", agentId, nonce }, { source: agentId, expectLastSubjectSeq: last.seq });
      return { won: true, seq };
    } catch (err) {
      if (!(err instanceof ConflictError)) {
        // No answer (appendEvent's UnavailableError): it may be stored. A
        // refusal (a conflict, a limit) stored nothing.
        if (err instanceof UnavailableError) state.mayHaveStored = true;
        throw err;
      }
      // Someone appended first (or our own append landed and its reply was
      // lost): look, giving a trailing replica a moment.
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * attempt));
      last = await lastOnTarget(ctx, deploymentId, agentId);
    }
  }
  return { won: false, reason: "the target's subject kept changing: not started" };
}

