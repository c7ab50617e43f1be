// Appending and reading back a deployment's events against a real server:
// the compare-and-set the coordinators rely on, and catch-up reads both
// below and above the direct-get limit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import {
  ConflictError,
  appendEvent,
  bindContext,
  connectNats,
  lastOnTarget,
  raceForTarget,
  loadDeployment,
  readEvents,
  followEvents,
  FOLLOW_HEARTBEAT_MS,
  saveProjection,
  type DeploymentSpec,
  type JsContext,
  type RaceNonce,
} from "../services/shared/src/index.js";
import { DESCRIPTIONS, ensureInfrastructure } from "../services/coordinator/src/infrastructure.js";
import { watchDeployment } from "../services/coordinator/src/queries/watchDeployment.js";
import { until } from "./helpers/wait.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

const spec = (id: string, targets: string[]): DeploymentSpec => ({
  id,
  requestId: id,
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 1000 },
  targets,
  requestedBy: "",
});

/**
 * `nc`, except that its `which`-th subscription (1-based; every one when
 * undefined) is read through `through`, and its publishes whose subject
 * `drop` says so are dropped: the faults a watch must survive.
 */
function faulty(
  nc: NatsConnection,
  opts: { which?: number; through: (sub: AsyncIterable<Msg>, subject: string) => AsyncIterable<unknown>; drop?: (subject: string) => boolean },
): NatsConnection {
  let subs = 0;
  return {
    publish: (subject: string, ...rest: unknown[]) => {
      if (!opts.drop?.(subject)) (nc.publish as (...a: unknown[]) => void)(subject, ...rest);
    },
    subscribe: (subject: string) => {
      const sub = nc.subscribe(subject);
      if (opts.which !== undefined && ++subs !== opts.which) return sub;
      return { unsubscribe: () => sub.unsubscribe(), [Symbol.asyncIterator]: () => opts.through(sub, subject)[Symbol.asyncIterator]() };
    },
  } as unknown as NatsConnection;
}

describe("event stream operations", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ctx: JsContext;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: "test" });
    await ensureInfrastructure(nc, await jetstreamManager(nc), { replicas: 1, commandsMaxAgeMs: 60_000 });
    ctx = await bindContext(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.cleanup();
  });

  it("a stream or bucket made by an earlier version, without a description, is given its own at the next start", async () => {
    const jsm = await jetstreamManager(nc);
    for (const name of ["KV_deploy_agents", "DEPLOY_COMMANDS"]) {
      const info = await jsm.streams.info(name);
      expect(info.config.description, name).toBe(DESCRIPTIONS[name === "KV_deploy_agents" ? "deploy_agents" : name]);
      await jsm.streams.update(name, { ...info.config, description: "" });
    }
    await ensureInfrastructure(nc, jsm, { replicas: 1, commandsMaxAgeMs: 60_000 });
    expect((await jsm.streams.info("KV_deploy_agents")).config.description).toBe("nats-deploy agents: each agent's entry, written by the agent");
    expect((await jsm.streams.info("DEPLOY_COMMANDS")).config.description).toBe("nats-deploy commands, one per target: deploy.cmd.<agent>.queue");
  });

  it("DEPLOY_COMMANDS made before the command queue (one message per subject) takes more than one per subject after the next start", async () => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("DEPLOY_COMMANDS");
    await jsm.streams.update("DEPLOY_COMMANDS", { ...info.config, max_msgs_per_subject: 1, discard_new_per_subject: true });
    const js = jetstream(nc);
    const subject = `deploy.cmd.a-${Date.now().toString(36)}.queue`;
    await js.publish(subject, "1");
    await expect(js.publish(subject, "2")).rejects.toThrow(/maximum messages per subject/);
    await ensureInfrastructure(nc, jsm, { replicas: 1, commandsMaxAgeMs: 60_000 });
    const after = (await jsm.streams.info("DEPLOY_COMMANDS")).config;
    expect(after.max_msgs_per_subject).toBe(-1);
    expect(after.discard_new_per_subject ?? false).toBe(false);
    expect((await js.publish(subject, "2")).duplicate).toBe(false);
  });

  it("creates a deployment at most once (expected last subject sequence 0)", async () => {
    await appendEvent(ctx, "d-once", { type: "deployment.created", spec: spec("d-once", ["a1"]) }, { source: "coordinator", expectLastSubjectSeq: 0 });
    await expect(
      appendEvent(ctx, "d-once", { type: "deployment.created", spec: spec("d-once", ["a1"]) }, { source: "coordinator", expectLastSubjectSeq: 0 }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("refuses a coordinator decision based on a stale view", async () => {
    const s1 = await appendEvent(ctx, "d-cas", { type: "deployment.created", spec: spec("d-cas", ["a1"]) }, { source: "coordinator", expectLastSubjectSeq: 0 });
    await appendEvent(ctx, "d-cas", { type: "deployment.started" }, { source: "coordinator", expectLastSubjectSeq: s1 });
    await expect(appendEvent(ctx, "d-cas", { type: "deployment.started" }, { source: "coordinator", expectLastSubjectSeq: s1 })).rejects.toBeInstanceOf(ConflictError);
  });

  it.each([5, 60])("reads back %i events in order, from any point, and catches KV up", async (n) => {
    const id = `d-read-${n}`;
    const targets = Array.from({ length: n }, (_, i) => `a${i}`);
    let last = await appendEvent(ctx, id, { type: "deployment.created", spec: spec(id, targets) }, { source: "coordinator", expectLastSubjectSeq: 0 });
    last = await appendEvent(ctx, id, { type: "deployment.started" }, { source: "coordinator", expectLastSubjectSeq: last });
    const seqs = [];
    for (const a of targets) {
      // interleave another deployment's events: reads must skip them
      await appendEvent(ctx, `${id}-other`, { type: "deployment.started" }, { source: "coordinator" });
      last = await appendEvent(ctx, id, { type: "target.dispatched", agentId: a }, { source: "coordinator", expectLastSubjectSeq: last });
      seqs.push(last);
    }
    const all = [];
    for await (const e of readEvents(ctx, id, { afterSeq: 0 })) all.push(e.seq);
    expect(all).toHaveLength(n + 2);
    expect(all.slice(2)).toEqual(seqs);
    const tail = [];
    for await (const e of readEvents(ctx, id, { afterSeq: seqs[1]! })) tail.push(e.seq);
    expect(tail).toEqual(seqs.slice(2));
    const bounded = [];
    for await (const e of readEvents(ctx, id, { afterSeq: 0, untilSeq: seqs[2]! })) bounded.push(e.seq);
    expect(bounded.at(-1)).toBe(seqs[2]);

    // Out of time (GetDeployment on a saturated server): the record is an
    // exact prefix, with the created event at least, and says where it stops.
    const early = (await loadDeployment(ctx, id, undefined, { budgetMs: -1 }))!;
    expect(early.record.lastSeq).toBeLessThan(last);
    expect(early.record.spec.targets).toEqual(targets);

    // KV holds a projection from halfway; loading catches it up to the end.
    const full = (await loadDeployment(ctx, id))!;
    expect(full.record.lastSeq).toBe(last);
    expect(Object.values(full.record.targets).every((t) => t.state === "DISPATCHED")).toBe(true);
    await saveProjection(ctx, full.record, 0);
    const again = (await loadDeployment(ctx, id))!;
    expect(again.kvLastSeq).toBe(last);
    expect(again.record).toEqual(full.record);
  });

  // Regression: catch-up reads stopped at a message whose `pending` was 0,
  // which may never come while the deployment is being appended to; 8 of 100
  // fan-out agents hung in their claim check in the benchmark.
  it("a catch-up read ends while other writers keep appending", async () => {
    const id = "d-busy";
    const targets = Array.from({ length: 300 }, (_, i) => `a${i}`);
    let last = await appendEvent(ctx, id, { type: "deployment.created", spec: spec(id, targets) }, { source: "coordinator", expectLastSubjectSeq: 0 });
    last = await appendEvent(ctx, id, { type: "deployment.started" }, { source: "coordinator", expectLastSubjectSeq: last });
    let writing = true;
    const writer = (async () => {
      for (const a of targets) {
        if (!writing) break;
        last = await appendEvent(ctx, id, { type: "target.dispatched", agentId: a }, { source: "coordinator", expectLastSubjectSeq: last });
      }
    })();
    try {
      for (let i = 0; i < 30; i++) {
        let n = 0;
        for await (const _ of readEvents(ctx, id, { afterSeq: 0 })) n++;
        expect(n).toBeGreaterThanOrEqual(2);
      }
    } finally {
      writing = false;
      await writer;
    }
  }, 60_000);

  const n = (journal: string, attempt: string): RaceNonce => ({ journal, attempt });

  // The per-target race (js/raceForTarget.ts): the agent's start and a
  // coordinator's delivery timeout or cancel, appended on the target's own
  // subject by compare-and-set; the server stores exactly one.
  it("a target's race goes to exactly one side: the agent's start, or a coordinator's decision", async () => {
    const id = "d-race";
    const timeout = { type: "target.timed_out" as const, agentId: "a1", phase: "delivery" as const, message: "late" };
    // The agent first: the coordinator's decision (expecting an empty subject) is refused.
    expect(await raceForTarget(ctx, id, "a1", n("j1", "x1"), { seq: 0 })).toMatchObject({ won: true });
    await expect(appendEvent(ctx, id, timeout, { source: "a1", expectLastSubjectSeq: 0 })).rejects.toBeInstanceOf(ConflictError);
    // An attempt of another journal (the first one lost) does not run again.
    expect(await raceForTarget(ctx, id, "a1", n("j2", "x2"), { seq: 0 })).toEqual({ won: false, reason: "this target was already started by this agent (journal lost?): not run again" });

    // The coordinator first: the agent loses, with the reason.
    await appendEvent(ctx, id, { ...timeout, agentId: "a2" }, { source: "a2", expectLastSubjectSeq: 0 });
    expect(await raceForTarget(ctx, id, "a2", n("j3", "x3"), { seq: 0 })).toEqual({ won: false, reason: "the target timed out before this agent started it" });
    await appendEvent(ctx, id, { type: "target.cancelled", agentId: "a3", message: "stop" }, { source: "a3", expectLastSubjectSeq: 0 });
    expect(await raceForTarget(ctx, id, "a3", n("j4", "x4"), await lastOnTarget(ctx, id, "a3"))).toEqual({ won: false, reason: "the target was cancelled before this agent started it" });

    // A message on the subject that decides nothing (a rejected command): the race goes on after it.
    const rejected = await appendEvent(ctx, id, { type: "agent.rejected_message", agentId: "a5", subject: "deploy.cmd.a5.x", error: "bad" }, { source: "a5" });
    expect(await raceForTarget(ctx, id, "a5", n("j5", "x5"), { seq: 0 })).toMatchObject({ won: true });
    expect((await lastOnTarget(ctx, id, "a5")).seq).toBeGreaterThan(rejected);
  });

  // Issue 16: the reply to the agent's append was lost (a saturated server);
  // its retry must see that the start is its own, not decline as if its
  // journal had been lost (which left 85 targets DISPATCHED at 10,000 agents).
  it("an agent whose start reply was lost wins on its retry (same nonce); another attempt does not", async () => {
    const id = "d-race-lost";
    const stored = await appendEvent(ctx, id, { type: "target.started", agentId: "a4", nonce: "j1.x1" }, { source: "a4", expectLastSubjectSeq: 0, msgId: "other" }); // stored, reply lost
    expect(await raceForTarget(ctx, id, "a4", n("j1", "x1"), { seq: 0 })).toEqual({ won: true, seq: stored });
    expect((await raceForTarget(ctx, id, "a4", n("j2", "x2"), { seq: 0 })).won).toBe(false);
  });

  // A restarted agent whose start was stored before its journal recorded
  // it: the same journal part (journal.ts startNonce) under another
  // attempt's part is an earlier run's (handleCommand.ts reports it
  // interrupted and runs nothing), whether this attempt's own append was
  // refused or its answer was lost; a start of an older agent (a UUID, no
  // journal part) is another journal's.
  it("a start with this journal's part of the nonce and another attempt's part is an earlier run's", async () => {
    const id = "d-race-earlier";
    const stored = await appendEvent(ctx, id, { type: "target.started", agentId: "a6", nonce: "j1.x1" }, { source: "a6", expectLastSubjectSeq: 0 });
    expect(await raceForTarget(ctx, id, "a6", n("j1", "x2"), { seq: 0 })).toEqual({ won: true, seq: stored, earlier: true });
    expect(await raceForTarget(ctx, id, "a6", n("j1", "x2"), await lastOnTarget(ctx, id, "a6"))).toEqual({ won: true, seq: stored, earlier: true });
    expect(await raceForTarget(ctx, id, "a6", n("j1", "x1"), await lastOnTarget(ctx, id, "a6"))).toEqual({ won: true, seq: stored });
    // Another journal whose part begins like this one's: not this journal's.
    expect((await raceForTarget(ctx, id, "a6", n("j", "1"), { seq: 0 })).won).toBe(false);
    const old = await appendEvent(ctx, "d-race-earlier-2", { type: "target.started", agentId: "a6", nonce: "0b5c2a1e-7d4f-4c1a-9e2b-3f6d8a9c0b1e" }, { source: "a6", expectLastSubjectSeq: 0 });
    expect(await raceForTarget(ctx, "d-race-earlier-2", "a6", n("j1", "x1"), { seq: 0 })).toEqual({ won: false, reason: "this target was already started by this agent (journal lost?): not run again" });
    expect(old).toBeGreaterThan(0);
  });

  it("a watch whose event read fails resumes after the last event it gave: in order, nothing repeated", async () => {
    const id = "d-watch-retry";
    const C = { source: "coordinator" };
    await appendEvent(ctx, id, { type: "deployment.created", spec: spec(id, ["a1"]) }, C);
    await appendEvent(ctx, id, { type: "deployment.started" }, C);
    await appendEvent(ctx, id, { type: "target.dispatched", agentId: "a1" }, C);
    // The first follow cannot create its consumer; the second breaks after
    // two events; the third works.
    let adds = 0;
    const flaky = {
      jsm: {
        consumers: {
          add: async (...args: Parameters<JsContext["jsm"]["consumers"]["add"]>) => {
            if (++adds === 1) throw new Error("consumer create timed out (injected)");
            return ctx.jsm.consumers.add(...args);
          },
        },
      },
      nc: faulty(ctx.nc, {
        which: 2,
        through: async function* (sub, subject) {
          let n = 0;
          for await (const x of sub) {
            if (x.subject !== subject && ++n > 2) throw new Error("stream leader lost (injected)");
            yield x;
          }
        },
      }),
    } as unknown as Pick<JsContext, "nc" | "jsm">;
    const retries: string[] = [];
    const seen: { seq: number; type: string }[] = [];
    const watching = (async () => {
      const signal = AbortSignal.timeout(30_000);
      for await (const w of watchDeployment(flaky, id, { afterSeq: 0, signal, onRetry: (err) => retries.push((err as Error).message) })) {
        seen.push({ seq: w.event.seq, type: w.event.event.type });
      }
    })();
    // Live events, appended while the watch is retrying.
    await appendEvent(ctx, id, { type: "target.started", agentId: "a1" }, { source: "a1" });
    await appendEvent(ctx, id, { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "ok", exitCode: 0, durationMs: 1 }, { source: "a1" });
    await appendEvent(ctx, id, { type: "deployment.finished", state: "SUCCEEDED", message: "1 of 1" }, C);
    await watching;
    expect(retries).toEqual(["consumer create timed out (injected)", "stream leader lost (injected)"]);
    expect(seen.map((e) => e.type)).toEqual([
      "deployment.created",
      "deployment.started",
      "target.dispatched",
      "target.started",
      "target.result",
      "deployment.finished",
    ]);
    const seqs = seen.map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  /** Watches `id` from the start to its terminal event through `c`, with the retries it took. */
  async function watchAll(c: Pick<JsContext, "nc" | "jsm">, id: string): Promise<{ seqs: number[]; types: string[]; retries: string[] }> {
    const retries: string[] = [];
    const seen: { seq: number; type: string }[] = [];
    const signal = AbortSignal.timeout(60_000);
    for await (const w of watchDeployment(c, id, { afterSeq: 0, signal, onRetry: (err) => retries.push((err as Error).message) })) {
      seen.push({ seq: w.event.seq, type: w.event.event.type });
    }
    return { seqs: seen.map((e) => e.seq), types: seen.map((e) => e.type), retries };
  }

  async function appendRollout(id: string): Promise<void> {
    const C = { source: "coordinator" };
    await appendEvent(ctx, id, { type: "deployment.created", spec: spec(id, ["a1"]) }, C);
    await appendEvent(ctx, id, { type: "deployment.started" }, C);
    await appendEvent(ctx, id, { type: "target.dispatched", agentId: "a1" }, C);
    await appendEvent(ctx, id, { type: "target.started", agentId: "a1" }, { source: "a1" });
    await appendEvent(ctx, id, { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "ok", exitCode: 0, durationMs: 1 }, { source: "a1" });
    await appendEvent(ctx, id, { type: "deployment.finished", state: "SUCCEEDED", message: "1 of 1" }, C);
  }
  const ALL = ["deployment.created", "deployment.started", "target.dispatched", "target.started", "target.result", "deployment.finished"];
  const watchConsumers = async (): Promise<string[]> => {
    const names: string[] = [];
    for await (const ci of ctx.jsm.consumers.list("DEPLOY_EVENTS")) if (ci.name.startsWith("watch_")) names.push(ci.name);
    return names;
  };

  it("a watch that misses a delivered event (a slow consumer dropped) follows again after the last event it gave", async () => {
    const id = "d-watch-gap";
    await appendRollout(id);
    // The first follow's subscription loses its third event.
    const lossy = {
      jsm: ctx.jsm,
      nc: faulty(ctx.nc, {
        which: 1,
        through: async function* (sub, subject) {
          let n = 0;
          for await (const x of sub) if (x.subject === subject || ++n !== 3) yield x;
        },
      }),
    };
    const got = await watchAll(lossy, id);
    expect(got.retries).toEqual([`following the events of ${id}: event 3 of the watch was not received`]);
    expect(got.types).toEqual(ALL);
    expect([...got.seqs].sort((a, b) => a - b)).toEqual(got.seqs);
    expect(new Set(got.seqs).size).toBe(got.seqs.length);
  });

  it("a watch costs the server one request, and its consumer is gone soon after the watch ends, with no delete request", async () => {
    const id = "d-watch-gone";
    await appendRollout(id);
    const before = await ctx.jsm.getAccountInfo();
    const got = await watchAll(ctx, id);
    const after = await ctx.jsm.getAccountInfo();
    expect(got.types).toEqual(ALL);
    expect(got.retries).toEqual([]);
    // The account info request itself is one.
    expect(after.api.total - before.api.total).toBe(2);
    await until("the server removes the watch's consumer", async () => ((await watchConsumers()).length === 0 ? true : undefined), 30_000, 250);
  });

  it("a watch whose consumer is deleted under it (a NATS node restarted) follows again once the heartbeats stop", async () => {
    const id = "d-watch-deleted";
    const C = { source: "coordinator" };
    await appendEvent(ctx, id, { type: "deployment.created", spec: spec(id, ["a1"]) }, C);
    const retries: string[] = [];
    const types: string[] = [];
    const watching = (async () => {
      const signal = AbortSignal.timeout(60_000);
      for await (const w of watchDeployment(ctx, id, { afterSeq: 0, signal, onRetry: (err) => retries.push((err as Error).message) })) types.push(w.event.event.type);
    })();
    await until("the watch has its first event", () => Promise.resolve(types.length === 1 ? true : undefined));
    const [name] = await watchConsumers();
    expect((await ctx.jsm.consumers.info("DEPLOY_EVENTS", name!)).config.description).toBe(`a watch of ${id}`);
    await ctx.jsm.consumers.delete("DEPLOY_EVENTS", name!);
    await appendEvent(ctx, id, { type: "deployment.started" }, C);
    await appendEvent(ctx, id, { type: "deployment.finished", state: "CANCELLED", message: "cancelled" }, C);
    await watching;
    expect(types).toEqual(["deployment.created", "deployment.started", "deployment.finished"]);
    expect(retries).toEqual([`following the events of ${id}: nothing from the server for ${2.5 * FOLLOW_HEARTBEAT_MS} ms`]);
  });

  /** Appends `n` events of ~1 KB (unreadable as events: followEvents gives them as invalid) for deployment `id`. */
  async function appendBulk(id: string, n: number): Promise<void> {
    const body = new TextEncoder().encode("x".repeat(1000));
    for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => ctx.js.publish(`deploy.evt.${id}.a1`, body)));
  }
  /** Follows `id` until `n` events came, pausing now and then as a slow client does; the sequences seen. */
  async function followN(c: Pick<JsContext, "nc" | "jsm">, id: string, n: number, retries: string[]): Promise<number[]> {
    const seqs: number[] = [];
    const signal = AbortSignal.timeout(120_000);
    while (seqs.length < n && !signal.aborted) {
      try {
        for await (const e of followEvents(c, id, { afterSeq: seqs.at(-1) ?? 0, signal })) {
          seqs.push(e.seq);
          if (seqs.length % 500 === 0) await new Promise((r) => setTimeout(r, 50));
          if (seqs.length >= n) break;
        }
      } catch (err) {
        retries.push((err as Error).message);
      }
    }
    return seqs;
  }

  it("a watch of more events than the server's flow control window (3 MB) answers its flow control and gets them all, in order", async () => {
    const id = "d-watch-bulk";
    await appendBulk(id, 3000);
    const retries: string[] = [];
    const seqs = await followN(ctx, id, 3000, retries);
    expect(retries).toEqual([]);
    expect(seqs.length).toBe(3000);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it("a watch whose flow control answers do not get through (no permission) follows again, and still gets every event once", async () => {
    const id = "d-watch-stalled";
    await appendBulk(id, 3000);
    const isFc = (subject: string | undefined): boolean => subject?.startsWith("$JS.FC.") === true;
    const denied = {
      jsm: ctx.jsm,
      nc: faulty(ctx.nc, {
        drop: isFc,
        through: async function* (sub) {
          for await (const m of sub) yield isFc(m.reply) ? { subject: m.subject, headers: m.headers, data: m.data, reply: undefined, respond: () => true } : m;
        },
      }),
    };
    const retries: string[] = [];
    const seqs = await followN(denied, id, 3000, retries);
    expect(seqs.length).toBe(3000);
    expect(new Set(seqs).size).toBe(3000);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(retries.length).toBeGreaterThan(0);
    for (const r of retries) expect(r).toContain("the server waits for an answer to its flow control");
  });
});
