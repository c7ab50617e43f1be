// The coordinator's cached folds (rollout/deploymentStates.ts): a catch-up to
// its own appends waits for their delivery instead of reading them back from
// the stream, only while the deliveries are this process's alone, and not
// for long. The stream here is a fake that counts reads: what is checked is
// which of the two sources a catch-up used, with the same fold either way.
import type { JsMsg } from "@nats-io/jetstream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COORDINATOR_SOURCE, encode, eventSubject, foldEvent, makeEvent, type DeploymentRecord, type DeploymentSpec, type EventBody, type JsContext } from "../services/shared/src/index.js";
import { DELIVERY_WAIT_MS, DeploymentStates } from "../services/coordinator/src/rollout/deploymentStates.js";
import { getDeployment } from "../services/coordinator/src/queries/watchDeployment.js";

const ID = "d-states";
const spec: DeploymentSpec = {
  id: ID,
  requestId: "r-states",
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
  targets: ["a1"],
  requestedBy: "",
};
const T0 = Date.parse("2026-12-03T10:00:00Z");

interface Stored {
  seq: number;
  body: EventBody;
}

/** The stream: its messages in order, and the reads a catch-up made of it. */
function fakeStream(messages: Stored[]): { ctx: Pick<JsContext, "js" | "jsm" | "deployments">; reads: () => number } {
  let reads = 0;
  const getMessage = (_stream: string, req: { seq?: number; last_by_subj?: string }) => {
    reads++;
    const m = req.last_by_subj !== undefined ? messages.at(-1) : messages.find((x) => x.seq >= req.seq!);
    return Promise.resolve(m ? { subject: eventSubject(ID, COORDINATOR_SOURCE), seq: m.seq, time: new Date(T0 + m.seq), data: encode(makeEvent(ID, m.body)) } : null);
  };
  const ctx = { js: {}, jsm: { streams: { getMessage } }, deployments: {} } as unknown as Pick<JsContext, "js" | "jsm" | "deployments">;
  return { ctx, reads: () => reads };
}

/** A consumer delivery of stream message `m`, the `delivery`-th of the consumer. */
function delivery(m: Stored, delivery: number): JsMsg {
  return {
    subject: eventSubject(ID, COORDINATOR_SOURCE),
    seq: m.seq,
    info: { deliverySequence: delivery },
    data: encode(makeEvent(ID, m.body)),
    timestampNanos: BigInt(T0 + m.seq) * 1_000_000n,
  } as unknown as JsMsg;
}

const created: Stored = { seq: 1, body: { type: "deployment.created", spec } };
const dispatched: Stored = { seq: 2, body: { type: "target.dispatched", agentId: "a1" } };

function createdRecord(): DeploymentRecord {
  return foldEvent(undefined, { seq: 1, time: new Date(T0 + 1).toISOString(), source: COORDINATOR_SOURCE, event: makeEvent(ID, created.body) }).record!;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a catch-up to this coordinator's own append", () => {
  it("waits for its delivery when the deliveries have been this process's alone, and reads nothing back", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    // Later than the sole-consumer span after the first delivery.
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 10_000);
    // The append of seq 2 was acknowledged; its delivery comes a moment later.
    const caughtUp = states.catchUp(ID, createdRecord(), 0, () => undefined, 2);
    setTimeout(() => states.delivered(delivery(dispatched, 2), ID), 5);
    const loaded = await caughtUp;
    expect(reads()).toBe(0);
    expect(loaded?.record.lastSeq).toBe(2);
    expect(loaded?.record.targets.a1?.state).toBe("DISPATCHED");
  });

  it("reads the stream at once after a gap in the deliveries (another coordinator takes some)", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    // Delivery 1 went to another coordinator: this one's window begins now.
    states.delivered(delivery(created, 2), ID);
    const t = Date.now();
    const loaded = await states.catchUp(ID, createdRecord(), 0, () => undefined, 2);
    expect(Date.now() - t).toBeLessThan(DELIVERY_WAIT_MS);
    expect(reads()).toBeGreaterThan(0);
    expect(loaded?.record.lastSeq).toBe(2);
  });

  it("reads the stream when the delivery does not come within the wait", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 10_000);
    const loaded = await states.catchUp(ID, createdRecord(), 0, () => undefined, 2);
    expect(reads()).toBeGreaterThan(0);
    expect(loaded?.record.lastSeq).toBe(2);
    expect(loaded?.record.targets.a1?.state).toBe("DISPATCHED");
  });
});

describe("a deferred projection write's catch-up (deliveredThrough)", () => {
  const third: Stored = { seq: 3, body: { type: "target.started", agentId: "a1", nonce: "n" } };

  it("goes as far as the deliveries made here, when they are all of the events after the fold, and reads nothing", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    states.delivered(delivery(dispatched, 2), ID);
    expect(states.deliveredThrough(ID)).toBe(2);
    const loaded = await states.catchUp(ID, createdRecord(), 0, () => undefined, states.deliveredThrough(ID));
    expect(reads()).toBe(0);
    expect(loaded?.record.lastSeq).toBe(2);
    expect(loaded?.record.targets.a1?.state).toBe("DISPATCHED");
  });

  it("is the fold itself when it is ahead of the deliveries (its own append, not delivered yet), and such a catch-up neither reads nor waits", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    // The reconcile folded its own append of seq 2, whose delivery is still to come.
    const folded = foldEvent(createdRecord(), { seq: 2, time: new Date(T0 + 2).toISOString(), source: COORDINATOR_SOURCE, event: makeEvent(ID, dispatched.body) }).record!;
    states.get(ID)!.record = folded;
    // Long a sole consumer: a catch-up past the deliveries would wait for one.
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 10_000);
    expect(states.deliveredThrough(ID)).toBe(2);
    const t = performance.now();
    const loaded = await states.catchUp(ID, folded, 0, () => undefined, states.deliveredThrough(ID));
    expect(performance.now() - t).toBeLessThan(DELIVERY_WAIT_MS);
    expect(reads()).toBe(0);
    expect(loaded?.record).toBe(folded);
  });

  it("is undefined after a gap in the deliveries (another coordinator took an event of it): catch up from the stream", () => {
    const { ctx } = fakeStream([created, dispatched, third]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    // Delivery 2 (stream seq 2) went to another coordinator.
    states.delivered(delivery(third, 3), ID);
    expect(states.deliveredThrough(ID)).toBeUndefined();
  });

  it("a catch-up to the last event now (a sweep) asks only for that sequence when every event after the fold was delivered here", async () => {
    const { ctx, reads } = fakeStream([created, dispatched, third]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    states.delivered(delivery(created, 1), ID);
    states.delivered(delivery(dispatched, 2), ID);
    states.delivered(delivery(third, 3), ID);
    const loaded = await states.catchUp(ID, createdRecord(), 0, () => undefined, undefined);
    expect(reads()).toBe(1);
    expect(loaded?.record.lastSeq).toBe(3);
  });

  it("is undefined for a deployment not held here", () => {
    const { ctx } = fakeStream([created]);
    expect(new DeploymentStates(ctx).deliveredThrough(ID)).toBeUndefined();
  });
});

describe("GetDeployment from the fold this coordinator holds", () => {
  const held = (states: DeploymentStates) => ({ foldOf: (id: string) => states.copyOf(id) });

  it("folds only the events after it, reads no projection, and leaves the held fold as it was", async () => {
    const { ctx, reads } = fakeStream([created, dispatched]);
    const states = new DeploymentStates(ctx);
    states.adopt(createdRecord(), 0);
    // The fake has no KV: reading the projection would throw.
    const rec = await getDeployment(ctx, ID, held(states));
    expect(rec.lastSeq).toBe(2);
    expect(rec.targets.a1?.state).toBe("DISPATCHED");
    // The last sequence, then the one event after the fold.
    expect(reads()).toBe(2);
    expect(states.get(ID)?.record.lastSeq).toBe(1);
    expect(states.get(ID)?.record.targets.a1?.state).toBe("PENDING");
    expect(rec.spec).toBe(states.get(ID)?.record.spec);
  });

  // A coordinator's event (the fake stream's subjects are all the coordinator's).
  const timedOut: Stored = { seq: 3, body: { type: "target.timed_out", agentId: "a1", phase: "delivery", message: "no start" } };
  /** A fold held at the created event, and these deliveries (stream message, delivery number) not folded yet. */
  function heldBehind(deliveries: [Stored, number][]): ReturnType<typeof fakeStream> & { states: DeploymentStates } {
    const stream = fakeStream([created, dispatched, timedOut]);
    const states = new DeploymentStates(stream.ctx);
    states.adopt(createdRecord(), 0);
    for (const [m, n] of deliveries) states.delivered(delivery(m, n), ID);
    return { ...stream, states };
  }

  it("folds the events delivered here and not folded yet (a long pass holds the fold back), reading only the last sequence", async () => {
    const { ctx, reads, states } = heldBehind([
      [created, 1],
      [dispatched, 2],
      [timedOut, 3],
    ]);
    const rec = await getDeployment(ctx, ID, { foldOf: (id) => states.deliveredCopyOf(id) });
    expect(rec.lastSeq).toBe(3);
    expect(rec.targets.a1?.state).toBe("TIMED_OUT");
    // The deployment's last sequence: nothing after the deliveries to read.
    expect(reads()).toBe(1);
    // The held fold and what was delivered for it are as they were: the reconcile still folds them.
    expect(states.get(ID)?.record.lastSeq).toBe(1);
    expect(states.deliveredThrough(ID)).toBe(3);
  });

  it("folds no deliveries after a gap in them (another coordinator took one), and reads the rest from the stream", async () => {
    // Delivery 2 (stream seq 2) went to another coordinator.
    const { ctx, reads, states } = heldBehind([
      [created, 1],
      [timedOut, 3],
    ]);
    expect(states.deliveredCopyOf(ID)?.lastSeq).toBe(1);
    const rec = await getDeployment(ctx, ID, { foldOf: (id) => states.deliveredCopyOf(id) });
    expect(rec.lastSeq).toBe(3);
    expect(rec.targets.a1?.state).toBe("TIMED_OUT");
    expect(reads()).toBe(3);
  });

  it("reads the projection for a deployment this coordinator does not hold", async () => {
    const { ctx } = fakeStream([created, dispatched]);
    let kvReads = 0;
    const withKv = { ...ctx, deployments: { get: () => (kvReads++, Promise.resolve(null)) } } as unknown as typeof ctx;
    const rec = await getDeployment(withKv, ID, held(new DeploymentStates(withKv)));
    expect(kvReads).toBeGreaterThan(0);
    expect(rec.lastSeq).toBe(2);
    expect(rec.targets.a1?.state).toBe("DISPATCHED");
  });
});
