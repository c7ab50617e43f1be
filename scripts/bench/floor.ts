// The floors: the least a rollout of N targets needs, on the same server and
// client library as the product, in three kinds (floorHost.ts does the
// per-target work):
// - bare: N commands (msg id, one subject per consumer, a stream configured
//   like DEPLOY_COMMANDS), N durable pull consumers (max_ack_pending 1, like
//   an agent's) each on its own connection, each publishing a result to a
//   stream (like DEPLOY_EVENTS) and acking; one ordered consumer collecting
//   all N results;
// - apply: the bare floor in which each consumer, before publishing its
//   result, appends one fdatasync'd record to a file of its own and spawns
//   /bin/true and waits for it: what any agent that really runs a deploy
//   executable at most once must do. ours / apply floor is the yardstick
//   (issue 17): everything beyond it is ours to make cheap;
// - protocol: our own protocol's per-target work in raw JetStream (look,
//   claim, started event, two journal records): ours / protocol floor is the
//   cost of our code given our protocol's choices.
// The consumers are spread over as many child processes as ours' agents.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { FloorHostConfig, FloorKind } from "./floorHost.js";
import { readCounters, workOf, type JsWork } from "./monitor.js";
import { NodeProc } from "./procs.js";
import { ROOT } from "../lib/paths.js";

export type Shape = "fanout" | "sequential";
export type { FloorKind };

const CMDS = "BENCH_FLOOR_COMMANDS";
const CLAIMS = "bench_floor_claims";
const RESULTS = "BENCH_FLOOR_RESULTS";
const FLOOR_HOST_MAIN = join(ROOT, "dist/scripts/bench/floorHost.js");
const nanos = (ms: number): number => ms * 1_000_000;

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
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
    duplicate_window: nanos(120_000),
  });
  await add({ name: RESULTS, subjects: ["bench.res.>"], retention: RetentionPolicy.Limits, storage: StorageType.File, duplicate_window: nanos(120_000) });
}

export interface FloorOptions {
  kind: FloorKind;
  /** Child processes the consumers are spread over (default 1). */
  hostProcesses?: number;
  /** The server's monitoring endpoint: the run's JetStream work is read from it. */
  monitorUrl?: string;
}

export interface FloorResult {
  ms: number;
  work?: JsWork;
}

/** An untimed small run: a fresh server's first stream writes and consumers are slower than any later ones. */
export async function warmUpFloor(url: string): Promise<void> {
  await runFloor(url, 10, "fanout", { kind: "bare" });
}

/** Runs one floor measurement; ms is from the first command publish to the N-th result collected (setup excluded). */
export async function runFloor(url: string, n: number, shape: Shape, opts: FloorOptions): Promise<FloorResult> {
  const run = `r${randomBytes(3).toString("hex")}`;
  const main = await connect({ servers: url, name: "bench-floor" });
  const journalDir = await mkdtemp(join(tmpdir(), "bench-floor-journal-"));
  const hosts: NodeProc[] = [];
  try {
    await ensureStreams(main);
    if (opts.kind === "protocol") await new Kvm(main).create(CLAIMS, { history: 1, storage: StorageType.File });
    const js = jetstream(main);
    const jsm = await jetstreamManager(main);
    // Setup (not timed): the consumers, in their host processes.
    const processes = Math.max(1, Math.min(opts.hostProcesses ?? 1, n));
    const per = Math.ceil(n / processes);
    for (let p = 0; p * per < n; p++) {
      const cfg: FloorHostConfig = { url, run, from: p * per, count: Math.min(per, n - p * per), kind: opts.kind, journalDir, cmdStream: CMDS, resultStream: RESULTS, claimsBucket: CLAIMS };
      hosts.push(new NodeProc(`floor-host-${p}`, FLOOR_HOST_MAIN, { ipc: true, env: { BENCH_FLOOR_HOST: JSON.stringify(cfg), UV_THREADPOOL_SIZE: "16" } }));
    }
    const isReady = (m: unknown): m is { ready: number } => typeof m === "object" && m !== null && "ready" in m;
    await Promise.all(hosts.map((h) => h.waitForMessage(isReady, 15 * 60_000)));
    // The collector: an ordered consumer on this run's results.
    const collector = await js.consumers.get(RESULTS, { filter_subjects: `bench.res.${run}.*` });
    const results = await collector.consume({ max_messages: 1024 });
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
      js.publish(`bench.cmd.${run}-${i}.d1`, JSON.stringify({ schema: "bench.command.v1", i, run }), { msgID: `d1.${run}-${i}` });

    const before = opts.monitorUrl ? await readCounters(opts.monitorUrl) : undefined;
    const t0 = performance.now();
    if (shape === "fanout") {
      await Promise.all(Array.from({ length: n }, (_, i) => publish(i)));
      await done;
    } else {
      for (let i = 0; i < n; i++) {
        await publish(i);
        await waitFor(i + 1);
      }
      await done;
    }
    const ms = performance.now() - t0;
    // The consumers' last acks and pulls follow the results: counted after a
    // settle, as ours' trailing writes are (ours.ts).
    let work: JsWork | undefined;
    if (before && opts.monitorUrl) {
      await new Promise((r) => setTimeout(r, 500));
      work = workOf(before, await readCounters(opts.monitorUrl), n);
    }
    results.stop();
    // Clean up this run's consumers so later shapes start from the same server state.
    await Promise.all(hosts.map((h) => h.stop(10_000)));
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => jsm.consumers.delete(CMDS, `floor-${run}-${i + k}`).catch(() => undefined)));
    }
    return { ms, ...(work ? { work } : {}) };
  } finally {
    await Promise.all(hosts.map((h) => h.kill()));
    await rm(journalDir, { recursive: true, force: true });
    await main.close();
  }
}
