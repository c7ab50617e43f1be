// The production topology with local processes (scripts/cluster/): three
// clustered nats-servers, two coordinators with R3 streams, three agents.
// A rollout finishes SUCCEEDED with every target applied exactly once while
// a coordinator is SIGKILLed, and while the NATS node leading DEPLOY_EVENTS
// is SIGKILLed, both in the middle of the rollout.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../scripts/cluster/launcher.js";
import { makeBundle } from "../scripts/lib/bundles.js";
import { fetchArtifact } from "../services/agent/src/artifactCache.js";
import { agentConsumerName } from "../services/shared/src/index.js";
import { DeployClient, type DeploymentEventMsg } from "./helpers/client.js";

const RECORD_SCRIPT = resolve(import.meta.dirname, "fixtures/deploy/record.sh");
const AGENTS = ["web-1", "web-2", "web-3"];

let dir: string;
let cluster: LocalCluster;
let nc: NatsConnection;
const clients: DeployClient[] = [];

function client(address: string): DeployClient {
  const c = new DeployClient(address);
  clients.push(c);
  return c;
}

/** How many times each agent's deploy executable started `deploymentId` (record.sh writes one "start" line per run). */
async function startsOf(id: string, deploymentId: string): Promise<number> {
  const text = await readFile(join(dir, "records", `${id}.log`), "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.startsWith("start ") && l.split(" ")[2] === deploymentId).length;
}

/** Resolves at the first event of `deploymentId` matching `pred`, seen through `c`'s WatchDeployment. */
function waitForEvent(c: DeployClient, deploymentId: string, pred: (e: DeploymentEventMsg) => boolean): Promise<DeploymentEventMsg> {
  return new Promise((res, rej) => {
    const w = c.watch(deploymentId, 0, (e) => {
      if (pred(e)) {
        w.cancel();
        res(e);
      }
    });
    w.done.then(() => rej(new Error(`watch of ${deploymentId} ended before the awaited event`)), rej);
  });
}

/** The stream's leader; asked again for up to 30 s (this test's own connection may be on a node just killed, and reconnecting). */
async function streamLeader(name: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const leader = (await jsm.streams.info(name)).cluster?.leader;
      if (leader) return leader;
      if (i >= 30) throw new Error(`${name} has no leader`);
    } catch (err) {
      if (i >= 30) throw err;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cluster-test-"));
  await mkdir(join(dir, "records"));
  await mkdir(join(dir, "control"));
  // Each apply takes 1.5 s, so the rollout (one target at a time) lasts
  // several seconds and a kill lands in the middle of it.
  for (const id of AGENTS) await writeFile(join(dir, "control", `${id}.sleep`), "1.5");
  const wrapper = join(dir, "deploy.sh");
  await writeFile(
    wrapper,
    `#!/usr/bin/env bash\nexport RECORD_DIR=${JSON.stringify(join(dir, "records"))}\nexport CONTROL_DIR=${JSON.stringify(join(dir, "control"))}\nexec ${JSON.stringify(RECORD_SCRIPT)}\n`,
    { mode: 0o755 },
  );
  cluster = await LocalCluster.start({
    dir: join(dir, "cluster"),
    agents: AGENTS,
    environment: "prod",
    deployScript: wrapper,
    logLevel: "debug",
    coordinatorEnv: { DEPLOY_SWEEP_INTERVAL_MS: "250" },
    agentEnv: { DEPLOY_AGENT_HEARTBEAT_MS: "500", DEPLOY_AGENT_ACK_WAIT_MS: "5000" },
  });
  nc = await connect({ servers: cluster.nats.url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  // Registered and live through either coordinator.
  const c = client(cluster.grpcAddresses[1]!);
  for (let i = 0; ; i++) {
    const live = (await c.agents({ app: "web", environment: "prod" }).catch(() => ({ agents: [] }))).agents.filter((a) => a.live);
    if (live.length === AGENTS.length) break;
    if (i > 100) throw new Error(`agents not live: ${JSON.stringify(live)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 150_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await nc?.close();
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
}, 90_000);

function diagnostics(): string {
  return [...cluster.coordinators, ...cluster.agents.values(), ...cluster.nats.nodes.map((n) => n.proc)]
    .map((p) => `--- ${p.name}\n${p.tail(15)}`)
    .join("\n");
}

describe("local cluster: 3 NATS nodes, 2 coordinators, 3 agents", () => {
  it("creates the streams with three replicas", async () => {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    for (const name of ["DEPLOY_COMMANDS", "DEPLOY_EVENTS", "KV_deploy_deployments", "KV_deploy_agents"]) {
      const info = await jsm.streams.info(name);
      expect(info.config.num_replicas, name).toBe(3);
      expect(info.cluster?.replicas?.length, name).toBe(2);
    }
  });

  it("a bundle is read by direct gets through every node at once, right after its upload", async () => {
    // Incompressible, so about 2 MiB of chunks: two batches of direct gets,
    // answered by whichever replica each request reaches.
    const data = await makeBundle([
      { name: "deploy.yaml", content: "version: 1\n" },
      { name: "app/blob", content: randomBytes(2_000_000) },
    ]);
    const up = await client(cluster.grpcAddresses[0]!).upload("web", data);
    const ref = { name: up.name, digest: up.digest, size: Number(up.size) };
    const info = await (await jetstreamManager(nc, { timeout: 5000 })).streams.info("OBJ_deploy_artifacts_web");
    expect(info.config.num_replicas).toBe(3);
    const conns = await Promise.all(cluster.nats.nodes.map((n) => connect({ servers: n.url, noRandomize: true })));
    try {
      const files = await Promise.all(conns.map((c, i) => fetchArtifact(c, jetstream(c), "web", join(dir, `cache-${i}`), ref)));
      for (const f of files) expect(createHash("sha256").update(await readFile(f)).digest("hex")).toBe(ref.digest.slice("sha256:".length));
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  });

  it("finishes a rollout while a coordinator is SIGKILLed mid-rollout, applying nothing twice", async () => {
    const [a1, a2] = cluster.grpcAddresses as [string, string];
    const created = await client(a1).create({
      requestId: `cluster-coord-${Date.now()}`,
      app: "web",
      environment: "prod",
      changeset: { version: "v1.0.0" },
      strategy: { maxConcurrency: 1 },
    });
    const id = created.id!;
    const survivor = client(a2);
    // After the first result, the rollout is between targets: coordinator-1
    // may hold the event that should dispatch the next one.
    await waitForEvent(survivor, id, (e) => e.type === "target.result");
    await cluster.coordinators[0]!.kill("SIGKILL");

    const final = await survivor.waitTerminal(id, 90_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${diagnostics()}`);
    });
    expect(final.state, final.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(final.targets?.map((t) => t.state)).toEqual(AGENTS.map(() => "TARGET_STATE_SUCCEEDED"));
    for (const a of AGENTS) expect(await startsOf(a, id), a).toBe(1);

    // Back to two coordinators for what follows.
    await cluster.restartCoordinator(0);
  });

  it("finishes a rollout while the DEPLOY_EVENTS leader's NATS node is SIGKILLed mid-rollout, applying nothing twice", async () => {
    const [a1, a2] = cluster.grpcAddresses as [string, string];
    const leader = await streamLeader("DEPLOY_EVENTS");
    const created = await client(a1).create({
      requestId: `cluster-nats-${Date.now()}`,
      app: "web",
      environment: "prod",
      changeset: { version: "v2.0.0" },
      strategy: { maxConcurrency: 1 },
    });
    const id = created.id!;
    const watcher = client(a2);
    await waitForEvent(watcher, id, (e) => e.type === "target.result");
    const node = cluster.nats.node(leader);
    await node.kill();

    const final = await watcher.waitTerminal(id, 120_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${diagnostics()}`);
    });
    expect(final.state, final.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(final.targets?.map((t) => t.state)).toEqual(AGENTS.map(() => "TARGET_STATE_SUCCEEDED"));
    for (const a of AGENTS) expect(await startsOf(a, id), a).toBe(1);
    // The stream elected another leader among the two nodes left.
    expect(await streamLeader("DEPLOY_EVENTS")).not.toBe(leader);

    // The node rejoins with its store and catches up.
    await node.start();
    await cluster.nats.waitForMetaLeader(30_000);
  });

  // An idle agent's pull waits on its consumer's leader. A new leader does
  // not know the pulls the old one held: the agent learns of the election
  // (an advisory) and pulls again, instead of waiting for its pull to
  // expire (30 s) while its command outlives the delivery timeout.
  it("an idle agent whose consumer gets a new leader takes its next command at once", async () => {
    const consumer = agentConsumerName("web-1");
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    // The previous test restarted a node: the consumer may still be electing.
    let before: string | undefined;
    for (let i = 0; !before; i++) {
      before = (await jsm.consumers.info("DEPLOY_COMMANDS", consumer).catch(() => undefined))?.cluster?.leader;
      if (i > 300) throw new Error(`${consumer} has no leader after 30 s`);
      if (!before) await new Promise((r) => setTimeout(r, 100));
    }
    // Let the agent's pull sit on the current leader, then move leadership.
    await new Promise((r) => setTimeout(r, 1000));
    await nc.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.DEPLOY_COMMANDS.${consumer}`, undefined, { timeout: 5000 });
    for (let i = 0; ; i++) {
      const leader = (await jsm.consumers.info("DEPLOY_COMMANDS", consumer).catch(() => undefined))?.cluster?.leader;
      if (leader && leader !== before) break;
      if (i > 100) throw new Error(`${consumer} elected no new leader`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const created = await client(cluster.grpcAddresses[0]!).create({
      requestId: `cluster-stepdown-${Date.now()}`,
      app: "web",
      environment: "prod",
      changeset: { version: "v3.0.0" },
      targets: ["web-1"],
      strategy: { deliveryTimeout: { seconds: 10, nanos: 0 } },
    });
    const final = await client(cluster.grpcAddresses[1]!).waitTerminal(created.id!, 60_000);
    expect(final.state, final.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await startsOf("web-1", created.id!)).toBe(1);
  });

  // A restarted agent asks for the command its last run held
  // (commandConsumer.ts RECLAIM_ACK_WAIT_MS): on a cluster the ack_wait
  // updates go to the consumer's three replicas.
  it("an agent SIGKILLed holding its command gets it again at its restart; its consumer's ack_wait is put back", async () => {
    const consumer = agentConsumerName("web-2");
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const agent = cluster.agents.get("web-2")!;
    process.kill(agent.pid, "SIGSTOP");
    const created = await client(cluster.grpcAddresses[0]!).create({
      requestId: `cluster-held-${Date.now()}`,
      app: "web",
      environment: "prod",
      changeset: { version: "v3.1.0" },
      targets: ["web-2"],
    });
    // Delivered to the stopped agent's pull, never acknowledged.
    for (let i = 0; (await jsm.consumers.info("DEPLOY_COMMANDS", consumer)).num_ack_pending === 0; i++) {
      if (i > 100) throw new Error("web-2's command was not delivered");
      await new Promise((r) => setTimeout(r, 100));
    }
    await agent.kill("SIGKILL");
    const restarted = await cluster.startAgent("web-2");
    const final = await client(cluster.grpcAddresses[1]!).waitTerminal(created.id!, 60_000);
    expect(final.state, final.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(restarted.logs()).toContain("asking for it again now");
    expect((await jsm.consumers.info("DEPLOY_COMMANDS", consumer)).config.ack_wait).toBe(5000 * 1_000_000);
    expect(await startsOf("web-2", created.id!)).toBe(1);
  });

  // The agents' command consumers keep their state in memory
  // (services/agent/src/commandConsumer.ts). A node that restarts catches up
  // from the others; every node at once forgets the state, but the cluster
  // keeps the consumers' definitions: each delivers the commands it holds
  // again, and the journal answers them.
  it("every NATS node restarted at once: the consumers are still there, what they deliver again runs nothing, and the next rollout succeeds", async () => {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const JOURNAL_ANSWER = "command already in journal";
    const answered = (a: string): number => cluster.agents.get(a)!.logs().split(JOURNAL_ANSWER).length - 1;
    const answeredBefore = new Map(AGENTS.map((a) => [a, answered(a)]));
    const rewatchesBefore = cluster.coordinators.map((c) => c.logs().split("watching it again").length - 1);
    await Promise.all(cluster.nats.nodes.map((n) => n.kill()));
    await Promise.all(cluster.nats.nodes.map((n) => n.start()));
    await cluster.nats.waitForMetaLeader(60_000);
    for (const a of AGENTS) {
      for (let i = 0; ; i++) {
        const ci = await jsm.consumers.info("DEPLOY_COMMANDS", agentConsumerName(a)).catch(() => undefined);
        if (ci?.cluster?.leader && ci.num_pending === 0 && ci.num_ack_pending === 0) {
          expect(ci.config.mem_storage, a).toBe(true);
          break;
        }
        if (i > 600) throw new Error(`${a}'s consumer not drained after 60 s\n${diagnostics()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // The state was forgotten: every command kept was delivered again (2 or 3 an agent), and the journal answered it.
    for (const a of AGENTS) expect(answered(a) - answeredBefore.get(a)!, a).toBeGreaterThanOrEqual(2);
    // An agent that reconnected last beats soon after (registration.ts, up
    // to a second): a create before its beat reaches the coordinator records
    // it offline at creation, SKIPPED (seen once in a full run: web-2 back
    // 100 ms before the create). The deployment is created once every agent
    // is live again to the coordinator that creates it.
    const creator = client(cluster.grpcAddresses[0]!);
    for (let i = 0; ; i++) {
      const r = await creator
        .call<{ agents?: { id?: string; live?: boolean }[] }>("ListAgents", { app: "web", environment: "prod" })
        .catch(() => undefined);
      if (AGENTS.every((a) => r?.agents?.find((x) => x.id === a)?.live === true)) break;
      if (i > 600) throw new Error(`agents not all live 60 s after the restart\n${diagnostics()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The streams may still be electing leaders or catching up after a
    // whole-cluster restart: a create may be answered UNAVAILABLE (or
    // ABORTED), or not within the client's 10 s deadline (seen once in a
    // full test run on the 2-core VM: DEADLINE_EXCEEDED while every NATS
    // request of both coordinators timed out for 15 s), for a while, and is
    // retried with its request id, as clients do (DESIGN.md: retrying a
    // timed-out call is always safe).
    const req = { requestId: `cluster-restart-all-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v4.0.0" }, strategy: { maxConcurrency: 3 } };
    let created;
    const giveUpAt = Date.now() + 120_000;
    while (!created) {
      created = await client(cluster.grpcAddresses[0]!)
        .create(req)
        .catch((err: { code?: number; details?: string }) => {
          if (![4, 10, 14].includes(err.code ?? 0) || Date.now() > giveUpAt) throw new Error(`CreateDeployment: ${err.code} ${err.details}\n${diagnostics()}`);
          return undefined;
        });
      if (!created) await new Promise((r) => setTimeout(r, 1000));
    }
    const final = await client(cluster.grpcAddresses[1]!).waitTerminal(created.id!, 120_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${diagnostics()}`);
    });
    expect(final.state, `${final.message}\n${JSON.stringify(final.targets)}\n${diagnostics()}`).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(final.targets?.map((t) => `${t.agentId} ${t.state}`), `${JSON.stringify(final.targets)}\n${diagnostics()}`).toEqual(AGENTS.map((a) => `${a} TARGET_STATE_SUCCEEDED`));
    for (const a of AGENTS) expect(await startsOf(a, created.id!), a).toBe(1);

    // The coordinators' bucket is kept in memory and came back empty, its
    // sequence numbers from 1: a watch resuming after its last sequence was
    // deaf for about as long as the cluster had been up. Each coordinator
    // watches it again once its own heartbeats stop coming back (within
    // agentLiveMs, 15 s), says so, and takes the other for live again.
    const REWATCH = "watching it again";
    const lastCount = (c: { logs(): string }): number | undefined => {
      const line = c.logs().split("\n").findLast((l) => l.includes("live coordinators changed"));
      return line === undefined ? undefined : (JSON.parse(line) as { coordinators: number }).coordinators;
    };
    const settled = (c: { logs(): string }, i: number): boolean => c.logs().split(REWATCH).length - 1 > rewatchesBefore[i]! && lastCount(c) === 2;
    for (let i = 0; !cluster.coordinators.every(settled); i++) {
      if (i > 600) throw new Error(`coordinators have not watched their bucket again, or do not see each other, 60 s after the restart: ${cluster.coordinators.map(lastCount).join(", ")}\n${diagnostics()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("every agent ran each deployment exactly once in all", async () => {
    for (const a of AGENTS) {
      const text = await readFile(join(dir, "records", `${a}.log`), "utf8");
      const starts = text.split("\n").filter((l) => l.startsWith("start "));
      const ends = text.split("\n").filter((l) => l.startsWith("end "));
      const n = a === "web-1" || a === "web-2" ? 4 : 3;
      expect(starts.length, a).toBe(n);
      expect(ends.length, a).toBe(n);
      expect(new Set(starts.map((l) => l.split(" ")[2])).size, a).toBe(n);
    }
  });
});
