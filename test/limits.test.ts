// Size limits (issue 16, DESIGN.md invariant 4): on a server whose
// max_payload is small for the deployment, nothing the system writes may jam
// it. A deployment.created the server would refuse is refused by
// CreateDeployment before anything is written; a projection too large for a
// KV value is stored in shards sized to the limit; and an agent's progress
// lines are cut to fit an event.
import { writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Stack } from "./helpers/stack.js";

const MAX_PAYLOAD = 4096;

describe(`a server with max_payload ${MAX_PAYLOAD}`, () => {
  let stack: Stack;
  let nc: NatsConnection;
  let agents: KV;

  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1"], natsConfigText: `max_payload: ${MAX_PAYLOAD}\njetstream {\n  sync_interval: always\n}\n` });
    nc = await connect({ servers: stack.nats.url });
    agents = await new Kvm(nc).open("deploy_agents");
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
  });

  /** Registry entries of agents that never run: live for the coordinator's agentLiveMs after this. */
  async function fakeAgents(environment: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const id = `f-${environment}-${String(i).padStart(3, "0")}`;
      const record = { schema: "deploy.agent.v1", id, environment, apps: ["web"], host: "fake", version: "0", labels: {}, currentReleases: {}, startedAt: new Date().toISOString() };
      await agents.put(id, JSON.stringify(record));
    }
    // The coordinator's registry follows deploy_agents by a watch: wait until it sees them all
    // (a clean-clone run created the deployment while it had seen 24 of 25).
    const client = stack.client();
    for (let i = 0; i < 200 && (await client.agents({ environment })).agents.length < n; i++) await new Promise((r) => setTimeout(r, 50));
  }

  it("a deployment whose targets do not fit one event is recorded in chunks that each fit, and runs", async () => {
    // 400 targets were refused here before chunking (a 5 KB deployment.created
    // over the 3,072 bytes an event may take); what CreateDeployment still
    // refuses on such a server is checked in test/large-sizes.test.ts.
    await fakeAgents("big", 400);
    const client = stack.client();
    const d = await client.create({ requestId: "big-1", app: "web", environment: "big", changeset: { version: "v1" }, strategy: { maxConcurrency: 400, deliveryTimeout: { seconds: 1 } } });
    expect(d.targetCount).toBe(400);
    const done = await client.waitTerminal(d.id!, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.counts).toEqual([{ state: "TARGET_STATE_TIMED_OUT", count: 400 }]);
    const events = await client.events(d.id!);
    const chunks = events.filter((e) => e.type === "deployment.targets");
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((e) => Number(/^(\d+) target/.exec(e.message ?? "")?.[1])).reduce((a, b) => a + b, 0)).toBe(400);
    // Every message of the deployment in DEPLOY_EVENTS is within the server's max_payload.
    const jsm = await jetstreamManager(nc);
    for (const e of events) {
      const m = await jsm.streams.getMessage("DEPLOY_EVENTS", { seq: Number(e.sequence) });
      expect(m!.data.length, e.type).toBeLessThanOrEqual(MAX_PAYLOAD - 1024);
    }
  });

  it("a deployment whose projection is over one KV value is stored in shards sized to the limit, each of which fits, and still finishes; the next one too", async () => {
    // 25 targets made a projection over the 3,072 bytes a KV value may take
    // here; it was not stored (reads folded the stream) before the shards.
    await fakeAgents("mid", 25);
    const client = stack.client();
    const d = await client.create({ requestId: "mid-1", app: "web", environment: "mid", changeset: { version: "v1" }, strategy: { maxConcurrency: 25, deliveryTimeout: { seconds: 1 } } });
    const done = await client.waitTerminal(d.id!, 60_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.length).toBe(25);
    expect(done.targets?.every((t) => t.state === "TARGET_STATE_TIMED_OUT")).toBe(true);
    const kv = await new Kvm(nc).open("deploy_deployments");
    let summary: { lastSeq?: number; shards?: { size: number; revisions: number[] } } | undefined;
    for (let i = 0; i < 100; i++) {
      const e = await kv.get(d.id!);
      summary = e?.json();
      if (summary?.lastSeq === Number(done.lastSequence)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(summary?.lastSeq).toBe(Number(done.lastSequence));
    expect(summary?.shards?.size).toBeLessThan(25);
    expect(summary?.shards?.revisions.length).toBe(Math.ceil(25 / summary!.shards!.size));
    const keys: string[] = [];
    for await (const k of await kv.keys(`shard.${d.id!}.*`)) keys.push(k);
    expect(keys.length).toBe(summary?.shards?.revisions.length);
    for (const k of keys) expect((await kv.get(k))!.value.length).toBeLessThanOrEqual(MAX_PAYLOAD - 1024);
    expect(stack.coordinators[0]!.logs()).not.toContain("projection not stored");
    const next = await client.waitTerminal((await client.create({ requestId: "prod-1", app: "web", environment: "prod", changeset: { version: "v1" } })).id!, 60_000);
    expect(next.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("an agent whose output would not fit one event cuts lines to fit, and its result still arrives", async () => {
    const script = join(stack.dir, "loud.sh");
    await writeFile(script, `#!/bin/sh\nfor i in $(seq 1 40); do printf 'line %03d %0300d\\n' "$i" 0; done\n`);
    await chmod(script, 0o755);
    await stack.startAgent("loud", { apps: { web: { deploy: script } }, environment: "loud" });
    const client = stack.client();
    const done = await client.waitTerminal((await client.create({ requestId: "loud-1", app: "web", environment: "loud", changeset: { version: "v1" } })).id!, 60_000);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const progress = (await client.events(done.id!)).filter((e) => e.type === "target.progress");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.some((e) => /^\d+ output line\(s\) cut$/.test(e.message ?? ""))).toBe(true);
  });
});

// Issue 18 item 3 / issue 16 item 4: DEPLOY_EVENTS has a retention limit and
// per-subject limit, so one source cannot fill the stream; past a limit the
// server refuses (discard new, nothing acknowledged is dropped), and the
// agent reports the refusal once instead of retrying for ever.
describe("DEPLOY_EVENTS limits", () => {
  let stack: Stack;
  let nc: NatsConnection;
  const PER_SUBJECT = 5;

  beforeAll(async () => {
    stack = await Stack.start({
      agents: [],
      coordinatorEnv: { DEPLOY_EVENTS_MAX_MSGS_PER_SUBJECT: String(PER_SUBJECT), DEPLOY_EVENTS_MAX_AGE_MS: String(3600_000) },
    });
    nc = await connect({ servers: stack.nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
  });

  it("the stream is configured with the retention, the per-subject limit and discard new", async () => {
    const info = await (await jetstreamManager(nc)).streams.info("DEPLOY_EVENTS");
    expect(info.config.max_age).toBe(3600_000 * 1_000_000);
    expect(info.config.max_msgs_per_subject).toBe(PER_SUBJECT);
    expect(info.config.discard).toBe("new");
    expect(info.config.discard_new_per_subject).toBe(true);
  });

  it("a source flooding one deployment's subject is refused by the server past the limit", async () => {
    const js = jetstream(nc);
    const outcomes: string[] = [];
    for (let i = 0; i < PER_SUBJECT + 3; i++) {
      outcomes.push(await js.publish("deploy.evt.d-flood.a9", "{}").then(
        () => "stored",
        (e: Error) => e.message,
      ));
    }
    expect(outcomes.slice(0, PER_SUBJECT)).toEqual(Array(PER_SUBJECT).fill("stored"));
    expect(outcomes.slice(PER_SUBJECT)).toEqual(Array(3).fill("maximum messages per subject exceeded"));
  });

  it("an agent over the limit reports the refusal once, acks its command, and its target times out", async () => {
    const script = join(stack.dir, "chatty.sh");
    // Batches of output a few hundred ms apart: one progress event each.
    await writeFile(script, `#!/bin/sh\nfor i in $(seq 1 10); do echo "batch $i"; sleep 0.4; done\n`);
    await chmod(script, 0o755);
    await stack.startAgent("c1", { apps: { web: { deploy: script } }, environment: "chatty" });
    const client = stack.client();
    const d = await client.create({ requestId: "chatty-1", app: "web", environment: "chatty", changeset: { version: "v1" }, strategy: { applyTimeout: { seconds: 6 } } });
    const done = await client.waitTerminal(d.id!, 90_000);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.state).toBe("TARGET_STATE_TIMED_OUT");
    const logs = stack.agent("c1").logs();
    expect(logs).toMatch(/report refused; not retrying.*maximum messages per subject exceeded|maximum messages per subject exceeded.*report refused; not retrying/);
    expect(logs).not.toMatch(/report failed; retrying[^\n]*maximum messages per subject/);
    const ci = await (await jetstreamManager(nc)).consumers.info("DEPLOY_COMMANDS", "agent-c1");
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.num_redelivered).toBe(0);
    expect(stack.agent("c1").running).toBe(true);
  });
});
