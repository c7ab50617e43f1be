// How an agent finds out that its link to NATS is dead (a half-open TCP
// connection: a server host lost, a NAT entry dropped, a stalled network).
//
// nats.js finds it by PINGing the server every `pingInterval`, whatever else
// crosses the link, and gives up after two PINGs unanswered: with its
// defaults (2 minutes), a dead link is found 4 to 6 minutes late, and an idle
// fleet of 10,000 agents sends 83 PINGs a second that the server answers
// with 83 PONGs, a write to a different connection each. But an idle
// agent's command pull already carries a sign of life every 30 s: the
// consumer's idle heartbeat, which nats.js watches. So the agent checks the
// link only when two of those are missed: it sends one PING (a flush) and
// reconnects when no PONG comes back within LINK_ANSWER_MS. A dead link is
// then found within about 2.5 minutes, and a healthy fleet sends no PINGs:
// the client's own PING is kept, every AGENT_PING_INTERVAL_MS, as a
// backstop for when no pull is open. (The server sends its PINGs only to a
// connection from which it received no message within its ping_interval,
// and an idle agent publishes a heartbeat more often than that.)
// A missed heartbeat while the server answers is a pull the server forgot:
// nats.js pulls again by itself.
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, type Logger } from "../../shared/src/index.js";

/** nats.js's own PING, a backstop only (its default is 2 minutes). */
export const AGENT_PING_INTERVAL_MS = 10 * 60_000;

/**
 * How long the PING sent after missed idle heartbeats may go unanswered
 * before the agent reconnects. Long, because a PONG comes from the server's
 * read loop, never from JetStream, and a reconnect that was not needed
 * costs the server far more than a late answer: a busy server delays the
 * idle heartbeats of every agent at once, and all of them check together.
 */
export const LINK_ANSWER_MS = 60_000;

export type LinkCheckOutcome = "answered" | "reconnected";

/**
 * Watches `status` (a command pull's notifications, ConsumerMessages.status())
 * until it ends; on missed heartbeats, checks the link as above and tells
 * `onCheck` how it went (the agent's metrics). One check at a time: nats.js
 * reports missed heartbeats again every interval.
 */
export async function checkLinkOnMissedHeartbeats(
  nc: Pick<NatsConnection, "flush" | "reconnect" | "isClosed">,
  status: AsyncIterable<{ type: string }>,
  log: Logger,
  opts: { answerWithinMs?: number; onCheck?: (outcome: LinkCheckOutcome) => void } = {},
): Promise<void> {
  const answerWithinMs = opts.answerWithinMs ?? LINK_ANSWER_MS;
  let checking = false;
  for await (const s of status) {
    if (s.type !== "heartbeats_missed" || checking || nc.isClosed()) continue;
    checking = true;
    log.info("missed the command pull's idle heartbeats: checking the NATS connection");
    void answered(nc, answerWithinMs)
      .then(async (ok) => {
        if (nc.isClosed()) return;
        opts.onCheck?.(ok ? "answered" : "reconnected");
        if (ok) return;
        log.warn({ answerWithinMs }, "the NATS server did not answer a PING: reconnecting");
        await nc.reconnect().catch((err: unknown) => log.warn({ err: errorMessage(err) }, "could not reconnect to NATS"));
      })
      .finally(() => {
        checking = false;
      });
  }
}

/** True when the server answers a PING within `ms`. */
async function answered(nc: Pick<NatsConnection, "flush">, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([nc.flush().then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}
