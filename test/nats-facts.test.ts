/**
 * Pins down nats-server / nats.js v3 behaviour that our design relies on.
 * The expectations below are what the pinned nats-server (scripts/tools.sh,
 * v2.15) actually does with @nats-io/{transport-node,jetstream,kv} 3.4: if a
 * server or client upgrade changes any of them, this file is where it shows
 * up first. (Two changed from Debian's 2.9.10: see "b." and "d.".)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, JsMsg, StoredMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { requestCancelPatched, serverVersionError } from "../services/shared/src/index.js";
import { MAX_AGENT_CONSUMERS, MAX_EVENT_CONSUMERS, commandsStreamConfig, eventsStreamConfig } from "../services/coordinator/src/infrastructure.js";
import { freePort, startNatsServer } from "./helpers/nats-server.js";
import type { NatsServerHandle } from "./helpers/nats-server.js";

/** Not in the client's JetStreamApiCodes table. */
const MAX_MSGS_PER_SUBJECT_EXCEEDED = 10077;

const open: NatsConnection[] = [];

async function connectTo(server: NatsServerHandle): Promise<NatsConnection> {
  const nc = await connect({
    servers: server.url,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  open.push(nc);
  return nc;
}

afterEach(async () => {
  const ncs = open.splice(0);
  await Promise.all(ncs.map((nc) => (nc.isClosed() ? Promise.resolve() : nc.close())));
});

let counter = 0;
function uniq(prefix: string): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Awaits `p`, which must reject with an Error, and returns that error. */
async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error("expected the promise to reject, but it resolved");
}

function asApiError(err: Error): JetStreamApiError {
  expect(err).toBeInstanceOf(JetStreamApiError);
  return err as JetStreamApiError;
}

async function fetchAll(
  js: JetStreamClient,
  stream: string,
  filter: string,
  startSeq: number,
): Promise<{ seq: number; subject: string; pending: number; data: string }[]> {
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    opt_start_seq: startSeq,
    deliver_policy: DeliverPolicy.StartSequence,
  });
  const out: { seq: number; subject: string; pending: number; data: string }[] = [];
  const iter = await consumer.fetch({ max_messages: 100, expires: 1000 });
  for await (const m of iter) {
    out.push(describeMsg(m));
    if (m.info.pending === 0) break;
  }
  await consumer.delete();
  return out;
}

function describeMsg(m: JsMsg): { seq: number; subject: string; pending: number; data: string } {
  return { seq: m.seq, subject: m.subject, pending: m.info.pending, data: m.string() };
}

async function addDedupStream(jsm: JetStreamManager, name: string, subjects: string[]): Promise<void> {
  await jsm.streams.add({
    name,
    subjects,
    storage: StorageType.File,
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
  });
}

async function keysOf(kv: KV, filter?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  return keys.sort();
}

describe("nats-server facts", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  async function setup(): Promise<void> {
    nc = await connectTo(server);
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  }

  it("launcher: server is the pinned 2.15.x (>= the 2.11 minimum), bound to 127.0.0.1, JetStream enabled, sync_interval always", async () => {
    await setup();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(nc.info?.version).toMatch(/^2\.15\./);
    expect(serverVersionError(nc.info?.version, server.url)).toBeNull();
    // The launcher's default is production's durability setting; /varz shows it.
    const monitorPort = await freePort();
    const monitored = await startNatsServer({ extraArgs: ["-m", String(monitorPort)] });
    try {
      const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as { jetstream?: { config?: { sync_always?: boolean } } };
      expect(varz.jetstream?.config?.sync_always).toBe(true);
    } finally {
      await monitored.cleanup();
    }
    expect(nc.info?.jetstream).toBe(true);
    const info = await jsm.getAccountInfo();
    expect(info.streams).toBeGreaterThanOrEqual(0);
  });

  it("2.15 caps a stream that sets no max_consumers at the server's default_max_consumers; DEPLOY_COMMANDS and DEPLOY_EVENTS set their own", async () => {
    // The default is 1,000 (agent 1,001 was refused for ever in the 10,000-agent bench); 3 here.
    const small = await startNatsServer({ configText: "jetstream {\n  sync_interval: always\n  limits { default_max_consumers: 3 }\n}\n" });
    const snc = await connectTo(small);
    try {
      const sjsm = await jetstreamManager(snc);
      await sjsm.streams.add({ name: "CAPPED", subjects: ["capped.>"] });
      for (let i = 0; i < 3; i++) await sjsm.consumers.add("CAPPED", { durable_name: `c${i}`, ack_policy: AckPolicy.Explicit });
      await expect(sjsm.consumers.add("CAPPED", { durable_name: "c3", ack_policy: AckPolicy.Explicit })).rejects.toThrow(/maximum consumers limit reached/);
      const cmds = commandsStreamConfig({ replicas: 1, commandsMaxAgeMs: 60_000 });
      expect(cmds.max_consumers).toBe(MAX_AGENT_CONSUMERS);
      await sjsm.streams.add(cmds);
      for (let i = 0; i < 4; i++) await sjsm.consumers.add(cmds.name, { durable_name: `agent-${i}`, ack_policy: AckPolicy.Explicit, filter_subject: `deploy.cmd.${i}.>` });
      expect((await sjsm.streams.info(cmds.name)).state.consumer_count).toBe(4);
      // DEPLOY_EVENTS (watches, the coordinators' reads) too.
      const events = eventsStreamConfig({ replicas: 1, commandsMaxAgeMs: 60_000 });
      expect(events.max_consumers).toBe(MAX_EVENT_CONSUMERS);
      await sjsm.streams.add(events);
      for (let i = 0; i < 4; i++) await sjsm.consumers.add(events.name, { ack_policy: AckPolicy.None, filter_subject: `deploy.evt.d-${i}.>` });
      expect((await sjsm.streams.info(events.name)).state.consumer_count).toBe(4);
    } finally {
      await snc.close();
      await small.cleanup();
    }
  });

  it("nats.js's RequestOne.cancel is ours on the pinned client (requestCancel.ts), and requests still answer, time out and fail as before", async () => {
    expect(requestCancelPatched).toBe(true);
    const c = await connect({ servers: server.url, noAsyncTraces: true });
    open.push(c);
    c.subscribe("facts.echo", { callback: (_e, m) => void m.respond(m.data) });
    await c.flush();
    expect((await c.request("facts.echo", "hi", { timeout: 2000 })).string()).toBe("hi");
    const none = await rejectionOf(c.request("facts.nobody", "x", { timeout: 2000 }));
    expect(none.message).toMatch(/no responders/);
    c.subscribe("facts.silent", { callback: () => undefined });
    await c.flush();
    expect((await rejectionOf(c.request("facts.silent", "x", { timeout: 200 }))).name).toBe("TimeoutError");
    // Cancelled by the connection closing: its own error, not the shared one.
    const pending = c.request("facts.silent", "x", { timeout: 10_000 });
    await c.close();
    expect((await rejectionOf(pending)).message).toMatch(/closed/);
  });

  it("a consume of 100 on a max_ack_pending 1 consumer gets one message at a time, the next after the ack, on the same pull (the agent's PULL)", async () => {
    await setup();
    const stream = uniq("PULL");
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    await jsm.consumers.add(stream, { durable_name: "one", ack_policy: AckPolicy.Explicit, max_ack_pending: 1, deliver_policy: DeliverPolicy.All });
    for (let i = 0; i < 10; i++) await js.publish(`${stream}.c`, String(i));
    let pulls = 0;
    const spy = nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${stream}.one`, { callback: () => void pulls++ });
    await nc.flush();
    const consumer = await js.consumers.get(stream, "one");
    const messages = await consumer.consume({ max_messages: 100, expires: 30_000, bind: true });
    const seen: string[] = [];
    for await (const m of messages) {
      seen.push(m.string());
      // Nothing else arrives while this one is unacked (max_ack_pending 1, no 409 for the rest of the pull).
      const info = await jsm.consumers.info(stream, "one");
      expect(info.num_ack_pending).toBe(1);
      m.ack();
      if (seen.length === 10) break;
    }
    await nc.flush();
    spy.unsubscribe();
    expect(seen).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(pulls).toBe(1);
  });

  describe("a. max_msgs_per_subject=1 + discard new per subject", () => {
    it("same msgID within the duplicate window -> PubAck{duplicate:true, seq: the original seq}", async () => {
      await setup();
      const stream = uniq("A");
      await addDedupStream(jsm, stream, [`${stream}.>`]);
      await js.publish(`${stream}.other`, "x"); // so the seq under test is not 1
      const first = await js.publish(`${stream}.d1.x`, "v1", { msgID: "m1" });
      expect(first).toEqual({ stream, seq: 2, duplicate: false });
      const second = await js.publish(`${stream}.d1.x`, "v2", { msgID: "m1" });
      expect(second).toEqual({ stream, seq: 2, duplicate: true });
      // still a duplicate after other messages were stored
      await js.publish(`${stream}.d1.y`, "y", { msgID: "m2" });
      expect(await js.publish(`${stream}.d1.x`, "v3", { msgID: "m1" })).toEqual({
        stream,
        seq: 2,
        duplicate: true,
      });
      // dedup is per stream by msgID only: same msgID on ANOTHER subject is also a duplicate
      // (and nothing is stored on that subject)
      expect(await js.publish(`${stream}.d1.z`, "z", { msgID: "m1" })).toEqual({
        stream,
        seq: 2,
        duplicate: true,
      });
      const si = await jsm.streams.info(stream);
      expect(si.state.messages).toBe(3);
      expect(si.state.last_seq).toBe(3);
      // the stored payload is the first one
      expect((await jsm.streams.getMessage(stream, { seq: 2 }))?.string()).toBe("v1");
    });

    it("different msgID or no msgID on an occupied subject -> JetStreamApiError 10077 (status 503)", async () => {
      await setup();
      const stream = uniq("A");
      await addDedupStream(jsm, stream, [`${stream}.>`]);
      await js.publish(`${stream}.d1.x`, "v1", { msgID: "m1" });

      for (const opts of [{ msgID: "m2" }, {}]) {
        const err = asApiError(await rejectionOf(js.publish(`${stream}.d1.x`, "v2", opts)));
        expect(err.name).toBe("JetStreamApiError");
        expect(err.constructor).toBe(JetStreamApiError); // not a subclass
        expect(err.code).toBe(MAX_MSGS_PER_SUBJECT_EXCEEDED);
        expect(err.status).toBe(503);
        expect(err.message).toBe("maximum messages per subject exceeded");
        expect(err.apiError()).toEqual({
          code: 503,
          err_code: 10077,
          description: "maximum messages per subject exceeded",
        });
      }
      const si = await jsm.streams.info(stream);
      expect(si.state.messages).toBe(1);
    });

    it("after the duplicate window expires the same msgID is rejected with 10077, not acked as duplicate", async () => {
      await setup();
      const stream = uniq("A");
      await jsm.streams.add({
        name: stream,
        subjects: [`${stream}.>`],
        storage: StorageType.File,
        max_msgs_per_subject: 1,
        discard: DiscardPolicy.New,
        discard_new_per_subject: true,
        duplicate_window: 500_000_000, // 500 ms in nanos
      });
      await js.publish(`${stream}.d1.x`, "v1", { msgID: "m1" });
      await new Promise((r) => setTimeout(r, 1200));
      const err = asApiError(await rejectionOf(js.publish(`${stream}.d1.x`, "v1", { msgID: "m1" })));
      expect(err.code).toBe(MAX_MSGS_PER_SUBJECT_EXCEEDED);
    });
  });

  describe("b. expect.lastSubjectSequence", () => {
    it("N right (0 for an empty subject) succeeds; N wrong -> JetStreamApiError 10071 'wrong last sequence: <actual>'", async () => {
      await setup();
      const stream = uniq("B");
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });

      const a1 = await js.publish(`${stream}.a`, "1", { expect: { lastSubjectSequence: 0 } });
      expect(a1.seq).toBe(1);
      // 0 is per subject: another empty subject also accepts 0
      const b1 = await js.publish(`${stream}.b`, "1", { expect: { lastSubjectSequence: 0 } });
      expect(b1.seq).toBe(2);
      const a2 = await js.publish(`${stream}.a`, "2", { expect: { lastSubjectSequence: 1 } });
      expect(a2.seq).toBe(3);

      // wrong: 0 on a non-empty subject
      let err = asApiError(
        await rejectionOf(js.publish(`${stream}.a`, "x", { expect: { lastSubjectSequence: 0 } })),
      );
      expect(err.code).toBe(10071);
      expect(err.code).toBe(JetStreamApiCodes.StreamWrongLastSequence);
      expect(err.status).toBe(400);
      expect(err.message).toBe("wrong last sequence: 3");
      // wrong: too high / stale
      for (const n of [99, 1]) {
        err = asApiError(
          await rejectionOf(js.publish(`${stream}.a`, "x", { expect: { lastSubjectSequence: n } })),
        );
        expect(err.code).toBe(10071);
        expect(err.message).toBe("wrong last sequence: 3");
        expect(err.apiError()).toEqual({ code: 400, err_code: 10071, description: "wrong last sequence: 3" });
      }
      // wrong: non-zero on an empty subject reports 0
      err = asApiError(
        await rejectionOf(js.publish(`${stream}.empty`, "x", { expect: { lastSubjectSequence: 5 } })),
      );
      expect(err.code).toBe(10071);
      expect(err.message).toBe("wrong last sequence: 0");
      expect((await jsm.streams.info(stream)).state.messages).toBe(3);
    });

    // 2.9.10 checked the msgID first and acked the retry as a duplicate; 2.15
    // checks the expectation first. Nothing of ours combines the two (agents'
    // reports use a msgID, coordinator appends an expectation): a retried
    // compare-and-set append reads as a conflict and the caller reloads.
    it("the expectation is checked before msgID dedup: a retried publish fails with 'wrong last sequence'", async () => {
      await setup();
      const stream = uniq("B");
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
      const opts = { msgID: "once", expect: { lastSubjectSequence: 0 } };
      expect(await js.publish(`${stream}.a`, "1", opts)).toEqual({ stream, seq: 1, duplicate: false });
      const err = asApiError(await rejectionOf(js.publish(`${stream}.a`, "1", opts)));
      expect(err.code).toBe(JetStreamApiCodes.StreamWrongLastSequence);
      expect(err.message).toMatch(/wrong last sequence: 1/);
    });
  });

  describe("c. ordered consumer with a single filter + getMessage next_by_subj", () => {
    async function seed(stream: string): Promise<void> {
      await jsm.streams.add({ name: stream, subjects: [`${stream}.evt.>`], storage: StorageType.File });
      // seq:      1        2        3        4        5
      for (const s of ["d1.a", "d2.a", "d1.b", "d2.b", "d1.c"]) {
        await js.publish(`${stream}.evt.${s}`, s);
      }
    }

    it("fetch from opt_start_seq K with filter 'evt.d1.>' yields matching msgs >= K; pending hits 0 on the last", async () => {
      await setup();
      const stream = uniq("C");
      await seed(stream);
      const got = await fetchAll(js, stream, `${stream}.evt.d1.>`, 2);
      expect(got).toEqual([
        { seq: 3, subject: `${stream}.evt.d1.b`, pending: 1, data: "d1.b" },
        { seq: 5, subject: `${stream}.evt.d1.c`, pending: 0, data: "d1.c" },
      ]);
      // K itself is included when it matches
      expect((await fetchAll(js, stream, `${stream}.evt.d1.>`, 3)).map((m) => m.seq)).toEqual([3, 5]);
    });

    it("fetch ends early once max_messages arrive; otherwise it waits for `expires`; a second fetch continues", async () => {
      await setup();
      const stream = uniq("C");
      await seed(stream);
      const consumer = await js.consumers.get(stream, {
        filter_subjects: `${stream}.evt.d1.>`,
        opt_start_seq: 1,
        deliver_policy: DeliverPolicy.StartSequence,
      });
      let t0 = Date.now();
      const first: number[] = [];
      for await (const m of await consumer.fetch({ max_messages: 2, expires: 5000 })) first.push(m.seq);
      expect(first).toEqual([1, 3]);
      expect(Date.now() - t0).toBeLessThan(1000);

      t0 = Date.now();
      const second: number[] = [];
      for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) second.push(m.seq);
      expect(second).toEqual([5]);
      // fewer than max_messages available: the fetch only completes at `expires`
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      await consumer.delete();
    });

    it("start seq past the end: fetch yields nothing", async () => {
      await setup();
      const stream = uniq("C");
      await seed(stream);
      expect(await fetchAll(js, stream, `${stream}.evt.d1.>`, 6)).toEqual([]);
    });

    it("jsm.streams.getMessage({seq: K, next_by_subj}) = first match at/after K; null when none; throws on errors", async () => {
      await setup();
      const stream = uniq("C");
      await seed(stream);
      // MsgRequest's type has no next_by_subj, but the server (2.9) honours it.
      const next = (seq: number, subj: string): Promise<StoredMsg | null> => {
        const q = { seq, next_by_subj: subj };
        return jsm.streams.getMessage(stream, q);
      };
      const m2 = await next(2, `${stream}.evt.d1.>`);
      expect(m2?.seq).toBe(3);
      expect(m2?.subject).toBe(`${stream}.evt.d1.b`);
      expect(m2?.string()).toBe("d1.b");
      expect(m2?.time).toBeInstanceOf(Date);
      expect((await next(3, `${stream}.evt.d1.>`))?.seq).toBe(3);
      expect((await next(1, `${stream}.evt.d2.>`))?.seq).toBe(2);

      // none: past the end, no matching subject, plain seq past the end -> null (no throw)
      expect(await next(6, `${stream}.evt.d1.>`)).toBeNull();
      expect(await next(1, `${stream}.evt.zz.>`)).toBeNull();
      expect(await jsm.streams.getMessage(stream, { seq: 100 })).toBeNull();

      // ...because the server answers 10037 "no message found", which the client maps to null
      const raw = await nc.request(
        `$JS.API.STREAM.MSG.GET.${stream}`,
        JSON.stringify({ seq: 6, next_by_subj: `${stream}.evt.d1.>` }),
      );
      expect(raw.json()).toMatchObject({
        type: "io.nats.jetstream.api.v1.stream_msg_get_response",
        error: { code: 404, err_code: 10037, description: "no message found" },
      });
      expect(JetStreamApiCodes.NoMessageFound).toBe(10037);

      // real errors still throw: unknown stream -> StreamNotFoundError (a JetStreamApiError) 10059
      const err = asApiError(await rejectionOf(jsm.streams.getMessage(uniq("NOPE"), { seq: 1 })));
      expect(err.name).toBe("StreamNotFoundError");
      expect(err.code).toBe(JetStreamApiCodes.StreamNotFound);
      expect(err.code).toBe(10059);
      expect(err.message).toBe("stream not found");
    });
  });

  describe("d. KV (history 1, file storage)", () => {
    it("create on an existing key and update with a wrong revision -> JetStreamApiError 10071", async () => {
      await setup();
      const kv = await new Kvm(nc).create(uniq("b"), { history: 1, storage: StorageType.File });
      expect(await kv.create("a.b", "1")).toBe(1);
      expect(await kv.put("a.c", "2")).toBe(2);

      let err = asApiError(await rejectionOf(kv.create("a.b", "again")));
      expect(err.constructor).toBe(JetStreamApiError);
      expect(err.code).toBe(10071);
      expect(err.status).toBe(400);
      expect(err.message).toBe("wrong last sequence: 1");

      err = asApiError(await rejectionOf(kv.update("a.b", "x", 7)));
      expect(err.code).toBe(10071);
      expect(err.message).toBe("wrong last sequence: 1");
      // update with a revision belonging to another key is also wrong
      err = asApiError(await rejectionOf(kv.update("a.b", "x", 2)));
      expect(err.code).toBe(10071);
      // update(k, v, 0) is rejected client-side, SYNCHRONOUSLY (update() is not async)
      expect(() => kv.update("a.new", "x", 0)).toThrow(new Error("version must be greater than 0"));

      expect(await kv.update("a.b", "v2", 1)).toBe(3);
      // create after delete succeeds (the client retries with the tombstone's revision)
      await kv.delete("a.c");
      expect(await kv.create("a.c", "again")).toBe(5);
    });

    it("keys(prefix.>) filters; deleted keys are omitted; entry.created is a server Date", async () => {
      await setup();
      const kv = await new Kvm(nc).create(uniq("b"), { history: 1, storage: StorageType.File });
      const before = Date.now();
      await kv.put("dep.1.a", "1");
      await kv.put("dep.1.b", "1");
      await kv.put("dep.2.a", "1");
      await kv.put("other", "1");
      await kv.put("dep.1.gone", "1");
      await kv.delete("dep.1.gone");
      const after = Date.now();

      expect(await keysOf(kv, "dep.1.>")).toEqual(["dep.1.a", "dep.1.b"]);
      expect(await keysOf(kv, "dep.>")).toEqual(["dep.1.a", "dep.1.b", "dep.2.a"]);
      expect(await keysOf(kv)).toEqual(["dep.1.a", "dep.1.b", "dep.2.a", "other"]);
      expect(await keysOf(kv, "nothing.>")).toEqual([]);

      const e = await kv.get("dep.1.a");
      expect(e?.created).toBeInstanceOf(Date);
      const t = e?.created.getTime() ?? 0;
      expect(t).toBeGreaterThanOrEqual(before - 1000);
      expect(t).toBeLessThanOrEqual(after + 1000);
      expect(e?.revision).toBe(1);
      expect(e?.operation).toBe("PUT");
      expect(await kv.get("missing")).toBeNull();
      const gone = await kv.get("dep.1.gone");
      expect(gone?.operation).toBe("DEL");
    });

    it("keys() with several filters (a 2.10 feature, refused by 2.9) lists the union", async () => {
      await setup();
      const kv = await new Kvm(nc).create(uniq("b"), { history: 1, storage: StorageType.File });
      await kv.put("a.1", "1");
      await kv.put("b.1", "1");
      await kv.put("c.1", "1");
      const keys: string[] = [];
      for await (const k of await kv.keys(["a.>", "b.>"])) keys.push(k);
      expect(keys.sort()).toEqual(["a.1", "b.1"]);
    });
  });
});

describe("e. after nats-server SIGKILL + restart of the same store dir", () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  interface Fixture {
    dedup: string;
    expect: string;
    events: string;
    bucket: string;
    created: number;
  }

  async function populate(nc: NatsConnection): Promise<Fixture> {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const f: Fixture = { dedup: uniq("EA"), expect: uniq("EB"), events: uniq("EC"), bucket: uniq("eb"), created: 0 };
    await addDedupStream(jsm, f.dedup, [`${f.dedup}.>`]);
    await js.publish(`${f.dedup}.d1.x`, "v1", { msgID: "m1" });
    await jsm.streams.add({ name: f.expect, subjects: [`${f.expect}.>`], storage: StorageType.File });
    await js.publish(`${f.expect}.a`, "1", { expect: { lastSubjectSequence: 0 } });
    await jsm.streams.add({ name: f.events, subjects: [`${f.events}.evt.>`], storage: StorageType.File });
    for (const s of ["d1.a", "d2.a", "d1.b"]) await js.publish(`${f.events}.evt.${s}`, s);
    const kv = await new Kvm(nc).create(f.bucket, { history: 1, storage: StorageType.File });
    await kv.create("dep.1", "x");
    await kv.put("other", "y");
    f.created = (await kv.get("dep.1"))?.created.getTime() ?? -1;
    return f;
  }

  async function verify(nc: NatsConnection, f: Fixture): Promise<void> {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);

    // a. stream config, dedup state and per-subject limit survived
    const cfg = (await jsm.streams.info(f.dedup)).config;
    expect(cfg.max_msgs_per_subject).toBe(1);
    expect(cfg.discard).toBe(DiscardPolicy.New);
    expect(cfg.discard_new_per_subject).toBe(true);
    expect(await js.publish(`${f.dedup}.d1.x`, "v1", { msgID: "m1" })).toEqual({
      stream: f.dedup,
      seq: 1,
      duplicate: true,
    });
    const e1 = asApiError(await rejectionOf(js.publish(`${f.dedup}.d1.x`, "v2", { msgID: "m2" })));
    expect(e1.code).toBe(MAX_MSGS_PER_SUBJECT_EXCEEDED);

    // b. last-subject-sequence state survived
    const e2 = asApiError(
      await rejectionOf(js.publish(`${f.expect}.a`, "x", { expect: { lastSubjectSequence: 0 } })),
    );
    expect(e2.code).toBe(10071);
    expect(e2.message).toBe("wrong last sequence: 1");
    expect((await js.publish(`${f.expect}.a`, "2", { expect: { lastSubjectSequence: 1 } })).seq).toBe(2);

    // c. ordered consumer + next_by_subj
    const got = await fetchAll(js, f.events, `${f.events}.evt.d1.>`, 2);
    expect(got.map((m) => [m.seq, m.pending])).toEqual([[3, 0]]);
    const q = { seq: 2, next_by_subj: `${f.events}.evt.d1.>` };
    expect((await jsm.streams.getMessage(f.events, q))?.seq).toBe(3);
    const none = { seq: 4, next_by_subj: `${f.events}.evt.d1.>` };
    expect(await jsm.streams.getMessage(f.events, none)).toBeNull();

    // d. KV
    const kv = await new Kvm(nc).open(f.bucket);
    const e3 = asApiError(await rejectionOf(kv.create("dep.1", "again")));
    expect(e3.code).toBe(10071);
    const e4 = asApiError(await rejectionOf(kv.update("dep.1", "again", 99)));
    expect(e4.code).toBe(10071);
    expect(await keysOf(kv, "dep.>")).toEqual(["dep.1"]);
    const entry = await kv.get("dep.1");
    expect(entry?.created).toBeInstanceOf(Date);
    expect(entry?.created.getTime()).toBe(f.created);
  }

  /** Starts watching now; the returned function waits for the "reconnect" status. */
  function reconnectWatcher(nc: NatsConnection): (timeoutMs: number) => Promise<void> {
    const it = nc.status()[Symbol.asyncIterator]();
    const reconnected = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done === true) throw new Error("status iterator ended before a reconnect");
        if (r.value.type === "reconnect") return;
      }
    })();
    reconnected.catch(() => undefined); // observed below; avoid an unhandled rejection
    return async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no reconnect within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([reconnected, timeout]);
      } finally {
        clearTimeout(timer);
        await it.return?.();
      }
    };
  }

  it("an existing connection reconnects and everything holds", async () => {
    const nc = await connectTo(server);
    const f = await populate(nc);
    const waitReconnected = reconnectWatcher(nc);
    const pid = server.pid;
    await server.kill();
    await server.restart();
    expect(server.pid).not.toBe(pid);
    await waitReconnected(10_000);
    await verify(nc, f);
  });

  it("a new connection after restart sees everything", async () => {
    let nc = await connectTo(server);
    const f = await populate(nc);
    await nc.close();
    await server.kill();
    await server.restart();
    nc = await connectTo(server);
    await verify(nc, f);
  });
});
