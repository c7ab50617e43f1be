/**
 * An agent finds a dead link to NATS from its command pull's missed idle
 * heartbeats instead of PINGing every two minutes (agent/src/linkCheck.ts).
 * A real nats-server behind a TCP proxy that can hold every byte (a link
 * that is open but carries nothing): the pull's heartbeats stop, the check's
 * PING goes unanswered, and the client reconnects, then pulls again once the
 * link carries traffic. On a link that answers, missed heartbeats cost one
 * PING and no reconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { LinkProxy } from "../scripts/chaos/proxy.js";
import { AGENT_PING_INTERVAL_MS, checkLinkOnMissedHeartbeats } from "../services/agent/src/linkCheck.js";
import { connectNats, createLogger } from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { until } from "./helpers/wait.js";

const log = createLogger("test", "silent");

describe("the agent's link check", () => {
  let server: NatsServerHandle;
  let proxy: LinkProxy;

  beforeAll(async () => {
    server = await startNatsServer();
    proxy = new LinkProxy(() => [server.port]);
    await proxy.start();
    const nc = await connectNats({ url: server.url, name: "setup" });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "LINK", subjects: ["link.>"] });
    await jsm.consumers.add("LINK", { durable_name: "agent", ack_policy: AckPolicy.Explicit });
    await nc.close();
  });

  afterAll(async () => {
    await proxy?.close();
    await server?.cleanup();
  });

  /** Every status the connection reports, as it happens. */
  function statuses(nc: NatsConnection): string[] {
    const seen: string[] = [];
    void (async () => {
      for await (const s of nc.status()) seen.push(s.type);
    })();
    return seen;
  }

  it("reconnects when the server does not answer after missed heartbeats, and the pull goes on", async () => {
    const nc = await connectNats({ url: proxy.url, name: "agent", pingIntervalMs: AGENT_PING_INTERVAL_MS });
    try {
      const seen = statuses(nc);
      const consumer = await jetstream(nc).consumers.get("LINK", "agent");
      // `bind` as the agent's pull (agent.ts PULL): after the reconnect the
      // client pulls again at once, with no consumer info first (an info
      // sent into the held link fails and backs off for the pull's expiry).
      const messages = await consumer.consume({ max_messages: 10, expires: 30_000, idle_heartbeat: 1000, bind: true });
      const outcomes: string[] = [];
      const checked = checkLinkOnMissedHeartbeats(nc, messages.status(), log, { answerWithinMs: 500, onCheck: (o) => outcomes.push(o) });
      const got: string[] = [];
      void (async () => {
        for await (const m of messages) {
          got.push(m.string());
          m.ack();
        }
      })();

      // The link holds everything: no heartbeat arrives, no PONG either.
      const stalled = proxy.stall(15_000);
      await until("a disconnect forced by the link check", () => Promise.resolve(seen.includes("disconnect")), 14_000);
      expect(outcomes[0]).toBe("reconnected");
      await stalled;
      await until("the reconnect", () => Promise.resolve(seen.includes("reconnect")), 20_000);

      // Pulling again after the reconnect: a command published now arrives.
      const pub = await connectNats({ url: server.url, name: "publisher" });
      await jetstream(pub).publish("link.cmd", "after the stall");
      await pub.close();
      await until("the message published after the reconnect", () => Promise.resolve(got.includes("after the stall")), 20_000);
      messages.stop();
      await checked;
    } finally {
      await nc.close();
    }
  }, 90_000);

  it("only PINGs when the server answers: a missed heartbeat there is a pull the client makes again", async () => {
    const nc = await connectNats({ url: proxy.url, name: "agent", pingIntervalMs: AGENT_PING_INTERVAL_MS });
    try {
      const seen = statuses(nc);
      let pings = 0;
      let reconnects = 0;
      const counted = {
        flush: () => (pings++, nc.flush()),
        reconnect: () => (reconnects++, nc.reconnect()),
        isClosed: () => nc.isClosed(),
      };
      let push: ((v: IteratorResult<{ type: string }>) => void) | undefined;
      const events: AsyncIterable<{ type: string }> = {
        [Symbol.asyncIterator]: () => ({ next: () => new Promise((r) => (push = r)) }),
      };
      const outcomes: string[] = [];
      const checked = checkLinkOnMissedHeartbeats(counted, events, log, { answerWithinMs: 500, onCheck: (o) => outcomes.push(o) });
      await until("the check to wait for a status", () => Promise.resolve(push !== undefined), 2000);
      push!({ value: { type: "heartbeats_missed" }, done: false });
      await until("the PING", () => Promise.resolve(pings === 1), 2000);
      await new Promise((r) => setTimeout(r, 1500));
      expect({ pings, reconnects, outcomes }).toEqual({ pings: 1, reconnects: 0, outcomes: ["answered"] });
      expect(seen).not.toContain("disconnect");
      push!({ value: undefined, done: true });
      await checked;
      await nc.flush();
    } finally {
      await nc.close();
    }
  }, 30_000);
});
