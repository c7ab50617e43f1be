// Reads a deployment's events back from DEPLOY_EVENTS in stream order.
import { DeliverPolicy, type JsMsg, type MsgRequest, type StoredMsg } from "@nats-io/jetstream";
import { UnavailableError, errorMessage } from "../errors.js";
import { deploymentEventFilter, EVENTS_STREAM, parseEventSubject } from "../names.js";
import { parseEvent } from "../schemas.js";
import type { StoredEvent } from "../fold.js";
import type { JsContext } from "./context.js";

/** An event as stored, or why it could not be read (it is skipped by the fold). */
export type ReadEvent = (StoredEvent & { invalid?: undefined }) | { seq: number; time: string; source: string; invalid: string };

function toReadEvent(subject: string, seq: number, time: Date, data: Uint8Array): ReadEvent {
  const source = parseEventSubject(subject)?.source ?? "";
  try {
    return { seq, time: time.toISOString(), source, event: parseEvent(data) };
  } catch (err) {
    return { seq, time: time.toISOString(), source, invalid: errorMessage(err) };
  }
}

const fromStored = (m: StoredMsg): ReadEvent => toReadEvent(m.subject, m.seq, m.time, m.data);
/**
 * The stream's time of a delivered message, in whole milliseconds as a
 * stored message's (Date.parse truncates the nanoseconds). Not JsMsg.time:
 * it divides the nanoseconds as a float, which past 2^53 rounds them to 256
 * ns and can land a millisecond later than the same message read back (the
 * fault suite's kv-equals-fold saw a projection folded from deliveries
 * differ from the stream's fold that way).
 */
export const deliveredTime = (m: JsMsg): Date => new Date(Number(m.timestampNanos / BigInt(1_000_000)));

/** The event a consumer delivered, as the stream stores it. */
export const fromJsMsg = (m: JsMsg): ReadEvent => toReadEvent(m.subject, m.seq, deliveredTime(m), m.data);

// Below this many events, one direct get per event is cheaper than creating,
// reading and deleting an ordered consumer (3 round trips plus the pull).
const DIRECT_GET_LIMIT = 16;
/** A catch-up read that receives nothing for this long fails (and is retried by its caller). */
const READ_STALL_MS = 10_000;

/** The first event of the deployment at or after `seq`, or null (2.9 answers "no message found", the client gives null). */
function nextEvent(ctx: Pick<JsContext, "jsm">, filter: string, seq: number): Promise<StoredMsg | null> {
  // MsgRequest's type lacks next_by_subj, which servers since 2.9 accept.
  const req = { seq, next_by_subj: filter } as unknown as MsgRequest;
  return ctx.jsm.streams.getMessage(EVENTS_STREAM, req);
}

/** The deployment's last event sequence now (wildcard last_by_subj works on 2.9), or 0. */
async function lastEventSeq(ctx: Pick<JsContext, "jsm">, filter: string): Promise<number> {
  const m = await ctx.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: filter });
  return m?.seq ?? 0;
}

/** The sequence of `deploymentId`'s last event now, or 0 (one request). */
export const lastDeploymentEventSeq = (ctx: Pick<JsContext, "jsm">, deploymentId: string): Promise<number> => lastEventSeq(ctx, deploymentEventFilter(deploymentId));

/**
 * Every event of `deploymentId` with a sequence above `afterSeq` (and at most
 * `untilSeq` when given) that the stream holds now. Ends when caught up.
 *
 * "Now" is fixed first, as the sequence of the deployment's last event: the
 * read stops there. Waiting instead for a message whose `pending` is 0 could
 * wait for ever on a stream being appended to concurrently.
 */
export async function* readEvents(
  ctx: Pick<JsContext, "js" | "jsm">,
  deploymentId: string,
  opts: { afterSeq: number; untilSeq?: number },
): AsyncGenerator<ReadEvent> {
  const filter = deploymentEventFilter(deploymentId);
  // A given bound is an event that exists (the caller saw it stored): no
  // need to ask for the last sequence.
  const until = opts.untilSeq ?? (await lastEventSeq(ctx, filter));
  let next = opts.afterSeq + 1;
  for (let i = 0; i < DIRECT_GET_LIMIT; i++) {
    if (next > until) return;
    const m = await nextEvent(ctx, filter, next);
    if (m === null || m.seq > until) return;
    yield fromStored(m);
    next = m.seq + 1;
  }
  if (next > until) return;
  // Long history: stream the rest through an ordered consumer.
  const consumer = await ctx.js.consumers.get(EVENTS_STREAM, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: next,
  });
  try {
    const messages = await consumer.consume({ max_messages: 512 });
    const it = messages[Symbol.asyncIterator]();
    try {
      for (;;) {
        // A catch-up read is bounded: the events up to `until` exist, so a
        // read that stops progressing (a stream leader lost mid-read) fails
        // and its caller retries, instead of holding a reconcile, and with
        // it a deployment, for ever.
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new UnavailableError(`reading the events of ${deploymentId} stalled for ${READ_STALL_MS} ms`)), READ_STALL_MS);
        });
        let r: IteratorResult<JsMsg>;
        try {
          r = await Promise.race([it.next(), stalled]);
        } finally {
          clearTimeout(timer);
        }
        if (r.done) throw new UnavailableError(`the event stream closed while reading ${deploymentId}`);
        const m = r.value;
        if (m.seq > until) break;
        yield fromJsMsg(m);
        if (m.seq >= until) break;
      }
    } finally {
      messages.stop();
    }
  } finally {
    // Not awaited, as in followEvents: the read is done.
    void consumer.delete().catch(() => undefined);
  }
}

/**
 * Follows a deployment's events live, from `afterSeq`, until `signal` aborts
 * or the caller stops iterating. An ordered consumer: after a NATS restart it
 * recreates itself from the last sequence it delivered, so nothing is missed
 * or repeated.
 */
export async function* followEvents(
  ctx: Pick<JsContext, "js">,
  deploymentId: string,
  opts: { afterSeq: number; signal?: AbortSignal },
): AsyncGenerator<ReadEvent> {
  const consumer = await ctx.js.consumers.get(EVENTS_STREAM, {
    filter_subjects: deploymentEventFilter(deploymentId),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: opts.afterSeq + 1,
  });
  // Pulls of 4,096: on a saturated server a pull's round trip takes seconds,
  // and the watch gets at most one batch per round trip, so small pulls
  // fall behind a large rollout's events.
  const messages = await consumer.consume({ max_messages: 4096 });
  const stop = (): void => void messages.stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    if (opts.signal?.aborted) return;
    for await (const m of messages) {
      yield fromJsMsg(m);
      if (opts.signal?.aborted) break;
    }
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    messages.stop();
    // Not awaited: a watch ends with its terminal event, not one API round
    // trip later (the server drops an ordered consumer left behind once it
    // is inactive).
    void consumer.delete().catch(() => undefined);
  }
}
