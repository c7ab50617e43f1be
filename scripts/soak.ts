// Memory over many deployments: a coordinator and a few agents, in this
// process, deploy one release after another; every --every deployments
// the heap is measured after a full GC. What a deployment leaves behind for
// good shows as growth per deployment; with --snapshots, a heap snapshot at
// the first measure and at the end, and the kinds of object that grew most
// between them, name it. The agents' journals grow by design (one entry per
// deployment, until journalKeepMs), and so does V8's compiled code at first.
//
// node dist/scripts/soak.js [--deployments 500] [--agents 3] [--every 100] [--snapshots <dir>]
// (npm run soak). Found the WeakRef an apply left in the agent's shutdown
// signal (AbortSignal.any, 6af61a0).
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import v8 from "node:v8";
import { startAgent, loadAgentConfig, type Agent } from "../services/agent/src/index.js";
import { loadCoordinatorConfig, startCoordinator } from "../services/coordinator/src/index.js";
import { createLogger } from "../services/shared/src/index.js";
import { BenchClient } from "./bench/client.js";
import { parseCli, usageError } from "./lib/cli.js";
import { freePort, startNatsServer } from "./lib/natsServer.js";

const USAGE = `usage: node dist/scripts/soak.js [--deployments 500] [--agents 3] [--every 100] [--snapshots <dir>]
  --deployments N  deployments, one after another, each to every agent (default 500)
  --agents N       agents, each its own connection, consumer and journal (default 3)
  --every N        measure the heap after a full GC every N deployments (default 100)
  --snapshots DIR  write a heap snapshot at the first measure and at the end, and name what grew`;

const { values } = parseCli("soak", USAGE, {
  deployments: { type: "string", default: "500" },
  agents: { type: "string", default: "3" },
  every: { type: "string", default: "100" },
  snapshots: { type: "string" },
});
const whole = (name: string, min: number): number => {
  const raw = values[name as "deployments"] ?? "";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usageError("soak", USAGE, `--${name}: "${raw}" is not a whole number >= ${min}`);
  return n;
};
const deployments = whole("deployments", 1);
const agentCount = whole("agents", 1);
const every = whole("every", 1);

// A full GC before each measure needs --expose-gc: run again with it.
if (typeof globalThis.gc !== "function") {
  const r = spawnSync(process.execPath, ["--expose-gc", ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
const gc = globalThis.gc as () => void;

const SWEEP_MS = 250;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const nats = await startNatsServer({ tempPrefix: "soak-nats-" });
  const dir = await mkdtemp(join(tmpdir(), "soak-"));
  const port = await freePort();
  // The coordinator reads its configuration from the environment.
  Object.assign(process.env, { NATS_URL: nats.url, DEPLOY_DEV_MODE: "1", DEPLOY_GRPC_LISTEN: `127.0.0.1:${port}`, DEPLOY_SWEEP_INTERVAL_MS: String(SWEEP_MS) });
  const log = createLogger("soak", "error");
  const coordinator = await startCoordinator(loadCoordinatorConfig([]), log);
  const agents: Agent[] = [];
  const client = new BenchClient(`127.0.0.1:${port}`);
  try {
    for (let i = 1; i <= agentCount; i++) {
      const id = `soak-${i}`;
      agents.push(await startAgent(loadAgentConfig([], { devMode: true, id, environment: "soak", apps: { web: { deploy: "/bin/true" } }, nats: { url: nats.url }, stateDir: join(dir, id), root: join(dir, id, "root") }), log));
    }
    const journalBytes = async (): Promise<number> => (await Promise.all(agents.map((a) => stat(join(dir, a.id, "journal.jsonl")).then((s) => s.size)))).reduce((x, y) => x + y, 0);
    const heap = (): number => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const t0 = Date.now();
    let first: { n: number; heap: number; snapshot?: string } | undefined;
    console.log(`soak: ${deployments} deployments to ${agentCount} agent(s) (deploy executable /bin/true), heap after a full GC every ${every}`);
    console.log("deployments  seconds  heap MB  growth since first, KB per deployment  journals KB  rss MB");
    for (let n = 1; n <= deployments; n++) {
      let created;
      // The first waits for the agents to be seen live.
      for (let attempt = 0; ; attempt++) {
        try {
          created = await client.create({ requestId: `soak-${n}`, app: "web", environment: "soak", changeset: { version: `v${n}` }, strategy: { maxConcurrency: agentCount } });
          break;
        } catch (err) {
          if (n > 1 || attempt >= 100) throw err;
          await sleep(200);
        }
      }
      for (;;) {
        const d = await client.get(created.id!);
        if (d.state === "DEPLOYMENT_STATE_SUCCEEDED") break;
        if (d.state !== "DEPLOYMENT_STATE_RUNNING" && d.state !== "DEPLOYMENT_STATE_PENDING") throw new Error(`deployment ${n} (${created.id}) ended ${d.state}`);
        await sleep(5);
      }
      if (n % every !== 0 && n !== deployments) continue;
      // A sweep after the finish: what the coordinator lets go of, it lets go of then.
      await sleep(2 * SWEEP_MS);
      const h = heap();
      let snapshot: string | undefined;
      if (values.snapshots && (first === undefined || n === deployments)) {
        await mkdir(values.snapshots, { recursive: true });
        snapshot = v8.writeHeapSnapshot(resolve(values.snapshots, `soak-${n}.heapsnapshot`));
      }
      first ??= { n, heap: h, ...(snapshot ? { snapshot } : {}) };
      const growth = n > first.n ? ((h - first.heap) / 1024 / (n - first.n)).toFixed(2) : "-";
      console.log(`${String(n).padStart(11)}  ${String(Math.round((Date.now() - t0) / 1000)).padStart(7)}  ${(h / 1e6).toFixed(2).padStart(7)}  ${growth.padStart(38)}  ${String(Math.round((await journalBytes()) / 1024)).padStart(11)}  ${String(Math.round(process.memoryUsage().rss / 1e6)).padStart(6)}`);
      if (snapshot && first.snapshot && snapshot !== first.snapshot) await printGrowth(first.snapshot, snapshot, n - first.n);
    }
  } finally {
    client.close();
    for (const a of agents) await a.close(0).catch(() => undefined);
    await coordinator.close().catch(() => undefined);
    await nats.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The kinds of object (type and constructor or string) whose count grew most in bytes between two heap snapshots. */
async function printGrowth(before: string, after: string, n: number): Promise<void> {
  const [a, b] = await Promise.all([kinds(before), kinds(after)]);
  const rows = [...b].map(([k, [count, bytes]]) => ({ k, count: count - (a.get(k)?.[0] ?? 0), bytes: bytes - (a.get(k)?.[1] ?? 0) })).filter((r) => r.count > 0 && r.bytes > 0);
  rows.sort((x, y) => y.bytes - x.bytes);
  console.log(`\ngrew most between the snapshots (${n} deployments):\n    count      bytes  per deployment  kind`);
  for (const r of rows.slice(0, 15)) console.log(`${String(r.count).padStart(9)}  ${String(r.bytes).padStart(9)}  ${(r.count / n).toFixed(2).padStart(14)}  ${r.k.slice(0, 100)}`);
}

async function kinds(file: string): Promise<Map<string, [number, number]>> {
  const s = JSON.parse(await readFile(file, "utf8")) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const f = s.snapshot.meta.node_fields;
  const [ti, ni, si] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const type = types[s.nodes[i + ti]!]!;
    const name = s.strings[s.nodes[i + ni]!]!;
    const k = `${type}: ${type.includes("string") ? JSON.stringify(name.slice(0, 40)) : name}`;
    const e = out.get(k) ?? [0, 0];
    e[0]++;
    e[1] += s.nodes[i + si]!;
    out.set(k, e);
  }
  return out;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
