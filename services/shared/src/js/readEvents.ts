// Reads a deployment's events back from DEPLOY_EVENTS in stream order.
import { createInbox, nanos, nuid } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, type JsMsg, type MsgRequest, type StoredMsg } from "@nats-io/jetstream";
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

/** Between the idle heartbeats the server sends a follow (followEvents) while no event comes. */
export const FOLLOW_HEARTBEAT_MS = 5_000;
/** A follow that receives nothing, not even a heartbeat, for this long fails (its caller reads again from where it was). */
const FOLLOW_SILENCE_MS = 2.5 * FOLLOW_HEARTBEAT_MS;
/** How long the server keeps a follow's consumer once nothing subscribes to it: the server removes it, with no request of ours. */
export const FOLLOW_INACTIVE_MS = 5_000;

/** Stream sequence, consumer sequence and stream time of a pushed message, from its reply subject (nats.js's parseInfo does this but is not exported). */
function pushedInfo(reply: string): { streamSeq: number; consumerSeq: number; time: Date } | undefined {
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<nanos>.<pending>,
  // or with a domain and account hash after ACK (and a token at the end).
  const t = reply.split(".");
  const at = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (at < 0 || t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const streamSeq = Number(t[at + 1]);
  const consumerSeq = Number(t[at + 2]);
  const nanos = t[at + 3]!;
  if (!Number.isSafeInteger(streamSeq) || !Number.isSafeInteger(consumerSeq) || !/^\d+$/.test(nanos)) return undefined;
  // Whole milliseconds, as deliveredTime.
  return { streamSeq, consumerSeq, time: new Date(Number(BigInt(nanos) / BigInt(1_000_000))) };
}

/**
 * Follows a deployment's events live, from `afterSeq`, until `signal` aborts
 * or the caller stops iterating, in stream order. Fails (UnavailableError)
 * when an event was missed or the server went silent (a NATS node lost, a
 * reconnect, the consumer gone): the caller follows again after the last
 * event it saw, so nothing is missed or repeated.
 *
 * One request to the server: the creation of a push consumer, which
 * delivers to a subscription made before it, with flow control and idle
 * heartbeats, and which the server removes FOLLOW_INACTIVE_MS after the
 * subscription ends. An ordered pull consumer (nats.js) made four: a stream
 * info, the create, a pull and a delete, and two round trips more before
 * the first event.
 */
export async function* followEvents(
  ctx: Pick<JsContext, "nc" | "jsm">,
  deploymentId: string,
  opts: { afterSeq: number; signal?: AbortSignal },
): AsyncGenerator<ReadEvent> {
  const inbox = createInbox();
  const sub = ctx.nc.subscribe(inbox);
  let silent = false;
  let timer: NodeJS.Timeout | undefined;
  const listen = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      silent = true;
      sub.unsubscribe();
    }, FOLLOW_SILENCE_MS);
  };
  const stop = (): void => sub.unsubscribe();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    if (opts.signal?.aborted) return;
    listen();
    await ctx.jsm.consumers.add(EVENTS_STREAM, {
      // Named and described for what it is in `nats consumer ls DEPLOY_EVENTS`.
      name: `watch_${nuid.next()}`,
      description: `a watch of ${deploymentId}`,
      deliver_subject: inbox,
      filter_subject: deploymentEventFilter(deploymentId),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: opts.afterSeq + 1,
      ack_policy: AckPolicy.None,
      // A rollout of 10,000 targets is tens of thousands of events: the
      // server waits for the watch to keep up instead of filling the
      // coordinator's connection until it drops it as a slow consumer.
      flow_control: true,
      idle_heartbeat: nanos(FOLLOW_HEARTBEAT_MS),
      inactive_threshold: nanos(FOLLOW_INACTIVE_MS),
      mem_storage: true,
      num_replicas: 1,
    });
    let consumerSeq = 0;
    let stalls = 0;
    for await (const m of sub) {
      listen();
      if (m.subject === inbox) {
        // The server's own: a heartbeat (saying how many events it has
        // delivered) or a flow control request, which must be answered.
        const code = m.headers?.code ?? 0;
        if (code >= 400) throw new UnavailableError(`following the events of ${deploymentId}: ${code} ${m.headers?.description ?? ""}`.trim());
        if (m.reply) m.respond();
        // A heartbeat that names a flow control still unanswered: answer it
        // again. Twice in a row and the answers are not getting through
        // (credentials made before the permission for them): follow again
        // from the last event, with a consumer of its own window.
        const stalled = m.headers?.get("Nats-Consumer-Stalled");
        if (stalled) {
          if (++stalls >= 2) throw new UnavailableError(`following the events of ${deploymentId}: the server waits for an answer to its flow control (may this coordinator publish to $JS.FC.${EVENTS_STREAM}.>?)`);
          ctx.nc.publish(stalled);
        }
        const last = Number(m.headers?.get("Nats-Last-Consumer") || consumerSeq);
        if (last > consumerSeq) throw new UnavailableError(`following the events of ${deploymentId}: events ${consumerSeq + 1}-${last} of the watch were not received`);
        continue;
      }
      const info = m.reply ? pushedInfo(m.reply) : undefined;
      if (!info) throw new UnavailableError(`following the events of ${deploymentId}: a message without stream metadata on ${m.subject}`);
      if (info.consumerSeq !== consumerSeq + 1) throw new UnavailableError(`following the events of ${deploymentId}: event ${consumerSeq + 1} of the watch was not received`);
      consumerSeq = info.consumerSeq;
      stalls = 0;
      // The caller's time (a client slow to read its stream) is not the server's silence.
      clearTimeout(timer);
      yield toReadEvent(m.subject, info.streamSeq, info.time, m.data);
      if (opts.signal?.aborted) return;
      listen();
    }
    if (silent) throw new UnavailableError(`following the events of ${deploymentId}: nothing from the server for ${FOLLOW_SILENCE_MS} ms`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", stop);
    // No delete request: the server removes the consumer once it has no
    // subscriber (FOLLOW_INACTIVE_MS), so a watch ends with its terminal
    // event and costs the server one request.
    sub.unsubscribe();
  }
}
