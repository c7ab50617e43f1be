// A deployment of 100,000 targets on a server with default limits (issue 16,
// part 4): created (its targets recorded in chunks), run to the end, and
// read back summarised and paged, with every message it wrote under the
// server's limits. The registry holds 100,000 agents written straight to
// deploy_agents, dead by the time of the create (SKIPPED, offline at
// creation), and 3 real agents that deploy. Prints the figures; asserts no
// timing.
import { readFileSync } from "node:fs";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Stack } from "./helpers/stack.js";
import { readEvents } from "../services/shared/src/js/readEvents.js";
import { readProjection } from "../services/shared/src/js/loadDeployment.js";
import { foldAll, type StoredEvent } from "../services/shared/src/fold.js";
import { EVENTS_MAX_MSG_SIZE } from "../services/shared/src/limits.js";
import type { DeploymentMsg } from "./helpers/client.js";
import { cpuSecondsOf } from "../scripts/bench/procs.js";

// 100,000 targets in all: the most CreateDeployment accepts.
const DEAD = 99_997;
const LIVE = ["live-1", "live-2", "live-3"];
const ENV = "huge";

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : -1;
};

describe(`a deployment of ${DEAD + LIVE.length} targets on a server with default limits`, () => {
  let stack: Stack;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let agents: KV;
  let deployments: KV;
  let created: DeploymentMsg;
  let createMs = 0;
  /** The coordinator's CPU seconds before and after the create (figures printed, none asserted). */
  let cpu0 = NaN;
  let cpu1 = NaN;

  beforeAll(async () => {
    // The server's default limits (max_payload 1 MiB), spelled out. Not
    // `sync_interval: always`, unlike the other tests: the 100,000 registry
    // writes of the setup would each be an fsync (138 s on the 2-core test
    // machine, 1.4 ms a write); the figures printed are without it.
    stack = await Stack.start({ agents: [], natsConfigText: "max_payload: 1048576\n" });
    nc = await connect({ servers: stack.nats.url });
    js = jetstream(nc);
    agents = await new Kvm(nc).open("deploy_agents");
    deployments = await new Kvm(nc).open("deploy_deployments");
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
  });

  it("creates it: 99,997 registered agents long dead (SKIPPED) and 3 live ones", async () => {
    // Registry entries straight into deploy_agents, 2,000 publishes in flight at a time.
    const t0 = Date.now();
    const startedAt = new Date().toISOString();
    for (let i = 0; i < DEAD; i += 2000) {
      const puts: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(DEAD, i + 2000); k++) {
        const id = `dead-${String(k).padStart(6, "0")}`;
        puts.push(agents.put(id, JSON.stringify({ schema: "deploy.agent.v1", id, environment: ENV, apps: ["web"], host: "gone", version: "0", labels: {}, currentReleases: {}, startedAt })));
      }
      await Promise.all(puts);
    }
    console.log(`[large] ${DEAD} registry entries written in ${Date.now() - t0} ms`);
    // Dead once the coordinator's agentLiveMs (3 s in the test stack) has passed since their last put.
    await new Promise((r) => setTimeout(r, 3500));
    await Promise.all(LIVE.map((id) => stack.startAgent(id, { environment: ENV })));
    // The registry follows deploy_agents in order: once it has a sentinel written after everything else, it has all of it.
    await agents.put("sentinel", JSON.stringify({ schema: "deploy.agent.v1", id: "sentinel", environment: "sentinel", apps: ["none"], host: "", version: "0", labels: {}, currentReleases: {}, startedAt }));
    const client = stack.client();
    for (let i = 0; i < 600 && (await client.agents({ environment: "sentinel" })).agents.length === 0; i++) await new Promise((r) => setTimeout(r, 100));

    const c0 = performance.now();
    cpu0 = cpuSecondsOf(stack.coordinators[0]!.pid) ?? NaN;
    created = await client.create({ requestId: "huge-1", app: "web", environment: ENV, changeset: { version: "v1" }, strategy: { maxConcurrency: 3 } }, 60_000);
    createMs = performance.now() - c0;
    cpu1 = cpuSecondsOf(stack.coordinators[0]!.pid) ?? NaN;
    console.log(`[large] CreateDeployment of ${DEAD + LIVE.length} targets: ${createMs.toFixed(0)} ms; coordinator RSS ${rssMb(stack.coordinators[0]!.pid)} MB, CPU ${(cpu1 - cpu0).toFixed(2)} s`);
    expect(created.targetCount).toBe(DEAD + LIVE.length);
    expect(created.targets?.length).toBe(1000);
    expect(created.nextPageToken).toBe("t1000");
    expect(created.counts).toContainEqual({ state: "TARGET_STATE_SKIPPED", count: DEAD });

    // A retry of the same request answers the same deployment.
    const r0 = performance.now();
    const again = await client.create({ requestId: "huge-1", app: "web", environment: ENV, changeset: { version: "v1" }, strategy: { maxConcurrency: 3 } }, 60_000);
    console.log(`[large] retry of the same request_id: ${(performance.now() - r0).toFixed(0)} ms`);
    expect(again.id).toBe(created.id);
  }, 240_000);

  it("runs to the end: the live targets succeed, the offline ones are SKIPPED, and it SUCCEEDS (convergence on)", async () => {
    const client = stack.client();
    const done = await client.waitTerminal(created.id!, 120_000);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.counts).toEqual(
      expect.arrayContaining([
        { state: "TARGET_STATE_SUCCEEDED", count: LIVE.length },
        { state: "TARGET_STATE_SKIPPED", count: DEAD },
      ]),
    );
    // From the create's answer to the end: the retry's read of it included.
    console.log(`[large] coordinator RSS after the rollout: ${rssMb(stack.coordinators[0]!.pid)} MB; CPU ${((cpuSecondsOf(stack.coordinators[0]!.pid) ?? NaN) - cpu1).toFixed(2)} s from the create's answer to the end`);
  }, 180_000);

  it("is read summarised and paged: counts always, targets in bounded pages, filtered by state", async () => {
    const client = stack.client();
    const get = (req: object): Promise<DeploymentMsg> =>
      new Promise((resolve, reject) => {
        const fn = client.raw.GetDeployment as (r: object, o: object, cb: (e: Error | null, r: DeploymentMsg) => void) => void;
        fn.call(client.raw, { deploymentId: created.id, ...req }, { deadline: Date.now() + 30_000 }, (e, r) => (e ? reject(e) : resolve(r)));
      });
    const timed = async (what: string, req: object): Promise<DeploymentMsg> => {
      const t = performance.now();
      const d = await get(req);
      console.log(`[large] GetDeployment ${what}: ${(performance.now() - t).toFixed(0)} ms, ${d.targets?.length ?? 0} target(s)`);
      return d;
    };
    const first = await timed("first page (default 1,000)", {});
    expect(first.targets?.length).toBe(1000);
    expect(first.targetCount).toBe(DEAD + LIVE.length);
    const summary = await timed("summary (page_size 1)", { pageSize: 1 });
    expect(summary.counts).toEqual(first.counts);
    expect(summary.targets?.length).toBe(1);
    const ok = await timed("target_state SUCCEEDED", { targetState: "TARGET_STATE_SUCCEEDED" });
    expect(ok.targets?.map((t) => t.agentId).sort()).toEqual(LIVE);
    expect(ok.nextPageToken).toBe("");

    // Every target, once each, in pages of 10,000.
    const seen = new Set<string>();
    let token = "";
    let pages = 0;
    const p0 = performance.now();
    do {
      const page = await get({ pageSize: 10_000, pageToken: token });
      for (const t of page.targets ?? []) seen.add(t.agentId!);
      token = page.nextPageToken ?? "";
      pages++;
    } while (token !== "");
    console.log(`[large] every target in ${pages} pages of 10,000: ${(performance.now() - p0).toFixed(0)} ms`);
    expect(seen.size).toBe(DEAD + LIVE.length);
    await expect(get({ pageToken: "nope" })).rejects.toThrow(/page_token/);
  }, 120_000);

  it("wrote no message over the server's limits, and its KV projection equals the fold of its events", async () => {
    const maxPayload = nc.info!.max_payload;
    const budget = Math.min(maxPayload, EVENTS_MAX_MSG_SIZE);
    const events: StoredEvent[] = [];
    let largestEvent = 0;
    let largestType = "";
    for await (const e of readEvents({ js, jsm: await jetstreamManager(nc) }, created.id!, { afterSeq: 0 })) {
      if (e.invalid !== undefined) throw new Error(`unreadable event ${e.seq}: ${e.invalid}`);
      events.push(e);
      const bytes = new TextEncoder().encode(JSON.stringify(e.event)).length;
      if (bytes > largestEvent) [largestEvent, largestType] = [bytes, e.event.type];
    }
    let largestKv = 0;
    let shards = 0;
    for await (const k of await deployments.keys(`shard.${created.id}.>`)) {
      shards++;
      largestKv = Math.max(largestKv, (await deployments.get(k))!.value.length);
    }
    largestKv = Math.max(largestKv, (await deployments.get(created.id!))!.value.length);
    console.log(
      `[large] ${events.length} events, largest ${largestEvent} bytes (${largestType}; limit ${budget}); projection: a summary and ${shards} shards, largest value ${largestKv} bytes (limit ${maxPayload})`,
    );
    expect(largestEvent).toBeLessThanOrEqual(budget - 1024);
    expect(largestKv).toBeLessThanOrEqual(maxPayload - 1024);
    expect(shards).toBe(Math.ceil((DEAD + LIVE.length) / 1000));
    const r0 = performance.now();
    const kv = await readProjection({ deployments }, created.id!);
    console.log(`[large] reading the projection (summary and shards) in the test process: ${(performance.now() - r0).toFixed(0)} ms`);
    expect(kv).toBeDefined();
    const folded = foldAll(events);
    expect(kv!.record.lastSeq).toBe(folded!.lastSeq);
    expect(kv!.record).toEqual(folded);
  }, 120_000);
});
