// The floor: the least JetStream messaging a rollout of N targets needs, with
// the same server and client library as the product. N commands (msg id, one
// subject per consumer, a stream configured like DEPLOY_COMMANDS), N durable
// pull consumers (max_ack_pending 1, like an agent's) each on its own
// connection, each publishing a result to a stream (like DEPLOY_EVENTS) and
// acking; one ordered consumer collecting all N results.
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
export async function runFloor(url: string, n: number, shape: Shape): Promise<number> {
  const run = `r${randomBytes(3).toString("hex")}`;
  const main = await connect({ servers: url, name: "bench-floor" });
  const conns: NatsConnection[] = [];
  const iters: ConsumerMessages[] = [];
  try {
    await ensureStreams(main);
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
          void (async () => {
            for await (const m of msgs) {
              await cjs.publish(`bench.res.${run}.${idx}`, m.data, { msgID: `${run}.${idx}.result` });
              m.ack();
            }
          })().catch(() => undefined);
        }),
      );
    }
    // The collector: an ordered consumer on this run's results.
    const collector = await js.consumers.get(RESULTS, { filter_subjects: `bench.res.${run}.>` });
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
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await main.close();
  }
}
