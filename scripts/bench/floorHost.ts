// A child process holding some of a floor run's consumers (scripts/bench/
// floor.ts), each on its own connection with its own durable pull consumer,
// so that the floor's consumers are spread over as many processes as ours'
// agents are (stack.ts): an apply forks /bin/true, which blocks its event
// loop until the child has exec'd, and a floor with every consumer in one
// process would be slower than the fleet it stands for. Its config comes as
// JSON in BENCH_FLOOR_HOST; it tells its parent over IPC when every consumer
// is pulling ({ready}) or that one failed ({error}).
//
// Per command, by the kind it names:
// - bare: publish the result, ack;
// - apply: one fdatasync'd record appended to the consumer's own file, spawn
//   /bin/true and wait for it, then publish the result and ack: the least any
//   agent that really runs a deploy executable at most once must do;
// - protocol: what our protocol makes an agent do, in raw JetStream: the race
//   (a started event appended with expected-last-subject-sequence 0 on the
//   target's own subject) beside an fdatasync'd journal record, /bin/true,
//   the result beside a second fdatasync'd record, then the ack. (Before
//   2026-12-05 a look at the deployment came first: the agent makes none now.)
import { spawn } from "node:child_process";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
// The same client as the product's: nats.js without its thrown-away Error per request.
import "../../services/shared/src/js/requestCancel.js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";

export type FloorKind = "bare" | "apply" | "protocol";

export interface FloorHostConfig {
  url: string;
  run: string;
  from: number;
  count: number;
  /** The kinds this run measures, one after another on the same consumers; each command names its kind. */
  kinds: FloorKind[];
  /** Where each consumer keeps its file (apply, protocol). */
  journalDir: string;
  cmdStream: string;
  resultStream: string;
}

const nanos = (ms: number): number => ms * 1_000_000;

const runTrue = (): Promise<void> =>
  new Promise<void>((resolve, reject) => spawn("/bin/true", { stdio: "ignore", detached: true }).once("close", () => resolve()).once("error", reject));

async function startConsumer(h: FloorHostConfig, idx: number, conns: NatsConnection[], iters: ConsumerMessages[], files: FileHandle[]): Promise<void> {
  // As the product connects (services/shared/src/js/context.ts): no stack captured per request.
  const nc = await connect({ servers: h.url, name: `bench-floor-${h.run}-${idx}`, noAsyncTraces: true });
  conns.push(nc);
  const name = `floor-${h.run}-${idx}`;
  // The agents' API timeout (30 s): at 10,000 consumers the server answers slowly.
  const jsm = await jetstreamManager(nc, { timeout: 30_000 });
  await jsm.consumers.add(h.cmdStream, {
    durable_name: name,
    filter_subject: `bench.cmd.${h.run}-${idx}.queue`,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000),
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 1,
    // As the agents' command consumers keep their state
    // (services/agent/src/commandConsumer.ts): the floor stands for the
    // same server doing the least, not for a costlier consumer than ours.
    mem_storage: true,
  });
  const js = jetstream(nc, { timeout: 30_000 });
  const consumer = await js.consumers.get(h.cmdStream, name);
  const msgs = await consumer.consume({ max_messages: 1 });
  iters.push(msgs);
  const file = h.kinds.some((k) => k !== "bare") ? await open(join(h.journalDir, `${idx}.jsonl`), "a") : undefined;
  if (file) files.push(file);
  const record = async (what: string): Promise<void> => {
    await file!.write(`{"op":"${what}","run":"${h.run}","i":${idx}}\n`);
    await file!.datasync();
  };
  void (async () => {
    for await (const m of msgs) {
      const kind = (m.json<{ kind: FloorKind }>()).kind;
      const result = `bench.res.${h.run}.${kind}.${idx}`;
      if (kind === "apply") {
        await record("applied");
        await runTrue();
      } else if (kind === "protocol") {
        // As the agent: each journal record beside the message it goes with.
        await Promise.all([record("started"), js.publish(`${result}.started`, m.data, { expect: { lastSubjectSequence: 0 } })]);
        await runTrue();
        await Promise.all([record("finished"), js.publish(result, m.data, { msgID: `${h.run}.${kind}.${idx}.result` })]);
        m.ack();
        continue;
      }
      await js.publish(result, m.data, { msgID: `${h.run}.${kind}.${idx}.result` });
      m.ack();
    }
  })().catch((err: unknown) => process.stderr.write(`floor host: consumer ${idx}: ${String(err)}\n`));
}

async function main(): Promise<void> {
  const h = JSON.parse(process.env.BENCH_FLOOR_HOST ?? "") as FloorHostConfig;
  const conns: NatsConnection[] = [];
  const iters: ConsumerMessages[] = [];
  const files: FileHandle[] = [];
  let next = h.from;
  const end = h.from + h.count;
  await Promise.all(
    Array.from({ length: Math.min(50, h.count) }, async () => {
      while (next < end) await startConsumer(h, next++, conns, iters, files);
    }),
  );
  process.send?.({ ready: conns.length });
  const exit = (): void => {
    for (const it of iters) it.stop();
    void Promise.all([...files.map((f) => f.close()), ...conns.map((c) => c.close())]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGTERM", exit);
  process.on("SIGINT", exit);
  process.on("disconnect", exit);
}

main().catch((err: unknown) => {
  process.send?.({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.stderr.write(`floor host: ${String(err)}\n`);
  process.exit(1);
});
