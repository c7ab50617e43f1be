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
import { ConflictError } from "../errors.js";
import { parseEvent, type DeployEvent } from "../schemas.js";
import { appendEvent } from "./appendEvent.js";
import type { JsContext } from "./context.js";

export type RaceOutcome =
  /**
   * `earlier`: the start found there is not this attempt's but has its
   * journal part (RaceNonce): an earlier run of the agent with the same
   * journal stored it, and crashed before the journal recorded it.
   */
  | { won: true; seq: number; earlier?: true }
  | { won: false; reason: string };

/**
 * A start's nonce, `<journal part>.<attempt part>`: the journal part is
 * derived from the agent's journal key and the deployment (journal.ts
 * startNonce), the same in every run of the agent with that journal; the
 * attempt part is random, one per handling of the command, kept across
 * the retries of its race. An older agent's nonce (a UUID) has no journal
 * part.
 */
export interface RaceNonce {
  journal: string;
  attempt: string;
}

const nonceText = (n: RaceNonce): string => `${n.journal}.${n.attempt}`;

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
function decided(e: DeployEvent | undefined): RaceOutcome | undefined {
  if (!e) return undefined;
  switch (e.type) {
    case "target.started":
      // Not this attempt's (found first by raceForTarget), nor this journal's.
      return { won: false, reason: "this target was already started by this agent (journal lost?): not run again" };
    case "target.timed_out":
      return { won: false, reason: "the target timed out before this agent started it" };
    case "target.cancelled":
      return { won: false, reason: "the target was cancelled before this agent started it" };
    case "target.result":
    case "target.progress":
      return { won: false, reason: "this target already ran on this agent, whose journal no longer has it (lost, or dropped after journalKeepMs): not run again" };
    default:
      // A decline or a rejected message of an earlier attempt decides nothing.
      return undefined;
  }
}

/**
 * The agent's attempt to start (deployment, agent): appends target.started
 * after `known` (the last message it read on the subject). A retry with the
 * same nonce after a lost reply finds its own event and wins; a start with
 * the same journal part and another attempt part is an earlier run's
 * (`earlier`).
 */
export async function raceForTarget(
  ctx: Pick<JsContext, "js" | "jsm"> & Partial<Pick<JsContext, "nc">>,
  deploymentId: string,
  agentId: string,
  nonce: RaceNonce,
  known: { seq: number; event?: DeployEvent; unreadable?: true },
): Promise<RaceOutcome> {
  const mine = nonceText(nonce);
  const journalPrefix = `${nonce.journal}.`;
  let last = known;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (last.event?.type === "target.started" && last.event.nonce !== undefined) {
      if (last.event.nonce === mine) return { won: true, seq: last.seq };
      if (last.event.nonce.startsWith(journalPrefix)) return { won: true, seq: last.seq, earlier: true };
    }
    // An unreadable last message may hide a timeout or a cancel before it
    // (the agent can read only the last message of its subject), and an
    // append expecting its sequence would win over that decision: the
    // agent ran a target already TIMED_OUT (test/faults.test.ts). Not
    // started; the target fails with this reason (or times out).
    if (last.unreadable) return { won: false, reason: `the last message on this target's subject (sequence ${last.seq}) is unreadable and may hide a timeout or cancel: not started` };
    const no = decided(last.event);
    if (no) return no;
    try {
      // No message id: the server would answer a duplicate of an earlier
      // attempt's id (a lost journal, a redelivery) as stored, and this
      // attempt would take it for its own. The nonce tells instead.
      const seq = await appendEvent(ctx, deploymentId, { type: "target.started", agentId, nonce: mine }, { source: agentId, expectLastSubjectSeq: last.seq });
      return { won: true, seq };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      // Someone appended first (or our own append landed and its reply was
      // lost): look, giving a trailing replica a moment.
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * attempt));
      last = await lastOnTarget(ctx, deploymentId, agentId);
    }
  }
  return { won: false, reason: "the target's subject kept changing: not started" };
}

