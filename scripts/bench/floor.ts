// The floors: the least a rollout of N targets needs, on the same server and
// client library as the product, in three kinds (floorHost.ts does the
// per-target work):
// - bare: N commands (msg id, one subject per consumer, filtered literally,
//   a stream configured like DEPLOY_COMMANDS: the agents' command queues),
//   N durable pull consumers (max_ack_pending 1, like an agent's) each on its
//   own connection, each publishing a result to a
//   stream (like DEPLOY_EVENTS) and acking; one ordered consumer collecting
//   all N results;
// - apply: the bare floor in which each consumer, before publishing its
//   result, appends one fdatasync'd record to a file of its own and spawns
//   /bin/true and waits for it: what any agent that really runs a deploy
//   executable at most once must do. ours / apply floor is the yardstick
//   (issue 17): everything beyond it is ours to make cheap;
// - protocol: our own protocol's per-target work in raw JetStream (the race's
//   started event, two journal records, each beside its message): ours /
//   protocol floor is the cost of our code given our protocol's choices.
// The consumers are spread over as many child processes as ours' agents.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
// The same client as the product's: nats.js without its thrown-away Error per request.
import "../../services/shared/src/js/requestCancel.js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { FloorHostConfig, FloorKind } from "./floorHost.js";
import { readCounters, workOf, type JsWork } from "./monitor.js";
import { NodeProc } from "./procs.js";
import { ROOT } from "../lib/paths.js";

export type Shape = "fanout" | "sequential";
export type { FloorKind };

const CMDS = "BENCH_FLOOR_COMMANDS";
const RESULTS = "BENCH_FLOOR_RESULTS";
const FLOOR_HOST_MAIN = join(ROOT, "dist/scripts/bench/floorHost.js");
const nanos = (ms: number): number => ms * 1_000_000;
/** Command publishes in flight at once in a fan-out (every one at once up to N = 1,000). */
const PUBLISH_WINDOW = 1000;

async function ensureStreams(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const add = async (cfg: Parameters<typeof jsm.streams.add>[0]): Promise<void> => {
    try {
      await jsm.streams.info(cfg.name);
    } catch {
      await jsm.streams.add(cfg);
    }
  };
  await add({
    name: CMDS,
    subjects: ["bench.cmd.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    duplicate_window: nanos(120_000),
  });
  await add({ name: RESULTS, subjects: ["bench.res.>"], retention: RetentionPolicy.Limits, storage: StorageType.File, duplicate_window: nanos(120_000) });
}

export interface FloorOptions {
  /** Child processes the consumers are spread over (default 1). */
  hostProcesses?: number;
  /** The server's monitoring endpoint: the run's JetStream work is read from it. */
  monitorUrl?: string;
  /** The run fails when not every result is in after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Where the hosts write their CPU profiles (node --cpu-prof), as the agent hosts do with --cpu-prof. */
  cpuProfDir?: string;
}

export interface FloorResult {
  ms: number;
  work?: JsWork;
}

/** An untimed small run: a fresh server's first stream writes and consumers are slower than any later ones. */
export async function warmUpFloor(url: string): Promise<void> {
  await runFloors(url, n10, "fanout", ["bare"], {});
}
const n10 = 10;

export type FloorResults = Partial<Record<FloorKind, FloorResult>>;

/**
 * Measures each of `kinds`, one after another on the same consumers (set up
 * once: 10,000 connections and consumers take minutes on a loaded machine);
 * each ms is from the first command publish to the N-th result collected.
 */
export async function runFloors(url: string, n: number, shape: Shape, kinds: FloorKind[], opts: FloorOptions): Promise<FloorResults> {
  const run = `r${randomBytes(3).toString("hex")}`;
  const main = await connect({ servers: url, name: "bench-floor", noAsyncTraces: true });
  const journalDir = await mkdtemp(join(tmpdir(), "bench-floor-journal-"));
  const hosts: NodeProc[] = [];
  let stopCollector: (() => void) | undefined;
  try {
    await ensureStreams(main);
    const js = jetstream(main, { timeout: 30_000 });
    // Setup (not timed): the consumers, in their host processes.
    const processes = Math.max(1, Math.min(opts.hostProcesses ?? 1, n));
    const per = Math.ceil(n / processes);
    for (let p = 0; p * per < n; p++) {
      const cfg: FloorHostConfig = { url, run, from: p * per, count: Math.min(per, n - p * per), kinds, journalDir, cmdStream: CMDS, resultStream: RESULTS };
      hosts.push(
        new NodeProc(`floor-host-${p}`, FLOOR_HOST_MAIN, {
          ipc: true,
          env: { BENCH_FLOOR_HOST: JSON.stringify(cfg), UV_THREADPOOL_SIZE: "16" },
          ...(opts.cpuProfDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] } : {}),
        }),
      );
    }
    const isReady = (m: unknown): m is { ready: number } => typeof m === "object" && m !== null && "ready" in m;
    await Promise.all(hosts.map((h) => h.waitForMessage(isReady, 15 * 60_000)));
    const out: FloorResults = {};
    for (const kind of kinds) out[kind] = await timedRun(js, run, n, shape, kind, opts, (stop) => {
        stopCollector = stop;
      });
    return out;
  } finally {
    stopCollector?.();
    await Promise.all(hosts.map((h) => h.stop(10_000)));
    // This run's streams and consumers go, whatever happened, so later runs
    // start from the same server state: one stream delete takes its
    // consumers with it (10,000 consumer deletes took minutes).
    const jsm = await jetstreamManager(main, { timeout: 60_000 });
    for (const stream of [CMDS, RESULTS]) await jsm.streams.delete(stream).catch(() => undefined);
    await rm(journalDir, { recursive: true, force: true });
    await main.close();
  }
}

/** One kind's timed run on consumers already pulling. */
async function timedRun(js: JetStreamClient, run: string, n: number, shape: Shape, kind: FloorKind, opts: FloorOptions, onCollector: (stop: () => void) => void): Promise<FloorResult> {
    // The collector: an ordered consumer on this run's results.
    const collector = await js.consumers.get(RESULTS, { filter_subjects: `bench.res.${run}.${kind}.*` });
    const results = await collector.consume({ max_messages: 1024 });
    onCollector(() => results.stop());
    let received = 0;
    let waiter: (() => void) | undefined;
    const done = (async () => {
      for await (const _m of results) {
        received++;
        waiter?.();
        if (received === n) break;
      }
    })();
    const waitFor = (count: number): Promise<void> =>
      new Promise<void>((resolve) => {
        if (received >= count) return resolve();
        waiter = () => {
          if (received >= count) {
            waiter = undefined;
            resolve();
          }
        };
      });
    const publish = (i: number): Promise<unknown> =>
      js.publish(`bench.cmd.${run}-${i}.queue`, JSON.stringify({ schema: "bench.command.v1", i, run, kind }), { msgID: `${kind}.${run}-${i}` });

    const before = opts.monitorUrl ? await readCounters(opts.monitorUrl) : undefined;
    const limitMs = opts.timeoutMs ?? 10 * 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${kind} floor ${shape} N=${n}: ${received} of ${n} results after ${limitMs} ms`)), limitMs);
    });
    const t0 = performance.now();
    const timed = async (): Promise<void> => {
      if (shape === "fanout") {
      // At most PUBLISH_WINDOW commands awaiting their acknowledgement: all
      // 10,000 at once time out (docs/performance.md); ours dispatches 1,000
      // targets per event and publishes those together.
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(PUBLISH_WINDOW, n) }, async () => {
          while (next < n) await publish(next++);
        }),
      );
        await done;
      } else {
        for (let i = 0; i < n; i++) {
          await publish(i);
          await waitFor(i + 1);
        }
        await done;
      }
    };
    await Promise.race([timed(), timedOut]).finally(() => clearTimeout(timer));
    const ms = performance.now() - t0;
    // The consumers' last acks and pulls follow the results: counted after a
    // settle, as ours' trailing writes are (ours.ts).
    let work: JsWork | undefined;
    if (before && opts.monitorUrl) {
      await new Promise((r) => setTimeout(r, 500));
      work = workOf(before, await readCounters(opts.monitorUrl), n);
    }
    results.stop();
    return { ms, ...(work ? { work } : {}) };
}
