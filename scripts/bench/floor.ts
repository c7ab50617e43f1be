// The floor: the least JetStream messaging a rollout of N targets needs, with
// the same server and client library as the product. N commands (msg id, one
// subject per consumer, a stream configured like DEPLOY_COMMANDS), N durable
// pull consumers (max_ack_pending 1, like an agent's) each on its own
// connection, each publishing a result to a stream (like DEPLOY_EVENTS) and
// acking; one ordered consumer collecting all N results.
//
// With `protocol`, each target also does, in raw JetStream and nothing of
// ours, the work the invariants make every agent do (DESIGN: applied at most
// once, nothing acknowledged lost): an fdatasync'd journal record beside a
// look at the last event, a claim (one KV create), a started event, the
// executable (/bin/true), a second fdatasync'd journal record, then the
// result (msg id) and the ack. ours / protocol floor is then the cost of the
// product's own code: coordinator, fold, gRPC, watch, registry.
import { spawn } from "node:child_process";
import { mkdtemp, open, rm, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
} from "@nats-io/jetstream";

export type Shape = "fanout" | "sequential";

const CMDS = "BENCH_FLOOR_COMMANDS";
const CLAIMS = "bench_floor_claims";
const RESULTS = "BENCH_FLOOR_RESULTS";
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

/** Runs one floor measurement; returns the elapsed milliseconds (setup excluded). */
const runTrue = (): Promise<void> =>
  new Promise<void>((resolve, reject) => spawn("/bin/true", { stdio: "ignore", detached: true }).once("close", () => resolve()).once("error", reject));

export async function runFloor(url: string, n: number, shape: Shape, opts: { protocol?: boolean } = {}): Promise<number> {
  const run = `r${randomBytes(3).toString("hex")}`;
  const main = await connect({ servers: url, name: "bench-floor" });
  const conns: NatsConnection[] = [];
  const iters: ConsumerMessages[] = [];
  const journals: FileHandle[] = [];
  const journalDir = opts.protocol ? await mkdtemp(join(tmpdir(), "bench-floor-journal-")) : undefined;
  try {
    await ensureStreams(main);
    const claims = opts.protocol ? await new Kvm(main).create(CLAIMS, { history: 1, storage: StorageType.File }) : undefined;
    const js = jetstream(main);
    const jsm = await jetstreamManager(main);
    // Setup (not timed): one connection and durable pull consumer per target.
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
          const idx = i + k;
          const nc = await connect({ servers: url, name: `bench-floor-${run}-${idx}` });
          conns.push(nc);
          const name = `floor-${run}-${idx}`;
          await jsm.consumers.add(CMDS, {
            durable_name: name,
            filter_subject: `bench.cmd.${run}-${idx}.>`,
            ack_policy: AckPolicy.Explicit,
            ack_wait: nanos(30_000),
            deliver_policy: DeliverPolicy.All,
            max_ack_pending: 1,
          });
          const cjs = jetstream(nc);
          const consumer = await cjs.consumers.get(CMDS, name);
          const msgs = await consumer.consume({ max_messages: 1 });
          iters.push(msgs);
          const journal = journalDir ? await open(join(journalDir, `${idx}.jsonl`), "a") : undefined;
          if (journal) journals.push(journal);
          const myClaims = claims ? await new Kvm(nc).open(CLAIMS) : undefined;
          const myJsm = claims ? await jetstreamManager(nc) : undefined;
          const record = async (what: string): Promise<void> => {
            await journal!.write(`{"op":"${what}","run":"${run}"}\n`);
            await journal!.datasync();
          };
          void (async () => {
            for await (const m of msgs) {
              if (journal && myClaims) {
                // The look: one direct get, as the agent's (2.9 answers "no message found": null).
                const look = myJsm!.streams.getMessage(RESULTS, { last_by_subj: `bench.res.${run}.${idx}.started` }).catch(() => null);
                await Promise.all([record("started"), look]);
                await myClaims.create(`${run}.${idx}`, m.data);
                await cjs.publish(`bench.res.${run}.${idx}.started`, m.data, { msgID: `${run}.${idx}.started` });
                await runTrue();
                await record("finished");
              }
              await cjs.publish(`bench.res.${run}.${idx}`, m.data, { msgID: `${run}.${idx}.result` });
              m.ack();
            }
          })().catch(() => undefined);
        }),
      );
    }
    // The collector: an ordered consumer on this run's results.
    const collector = await js.consumers.get(RESULTS, { filter_subjects: `bench.res.${run}.*` });
    const results = await collector.consume({ max_messages: 1024 });
    iters.push(results);
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
    // Clean up this run's consumers so later shapes start from the same server state.
    for (const it of iters) it.stop();
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => jsm.consumers.delete(CMDS, `floor-${run}-${i + k}`).catch(() => undefined)));
    }
    return ms;
  } finally {
    for (const it of iters) it.stop();
    await Promise.all(journals.map((j) => j.close().catch(() => undefined)));
    if (journalDir) await rm(journalDir, { recursive: true, force: true });
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await main.close();
  }
}
