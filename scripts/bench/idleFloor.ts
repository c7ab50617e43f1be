// The idle floor of goal 4: what nats-server spends, idle, on N connections
// that each hold a waiting pull on a durable consumer of their own, as the
// agents do (max_ack_pending 1, 100 messages a pull, 300 s expiry, idle
// heartbeat 30 s), and nothing else: no agent heartbeats, no coordinator,
// no KV. The least any fleet of pull-based agents costs the server idle;
// the bench's idle fleet (scale.ts) is measured against a goal, not this,
// so this runs on its own (about 3 minutes), not in `npm run bench`:
//
//   node dist/scripts/bench/idleFloor.js [--n 10000] [--idle-s 120]
//
// Prints nats-server's CPU as % of one core over the window, and the
// messages a second in and out (/varz).
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { parseCli } from "../lib/cli.js";
import { startBenchNatsServer } from "./natsServer.js";
import { cpuSecondsOf, sleep } from "./procs.js";

const STREAM = "IDLE_FLOOR";
/** The agents' pull (services/agent/src/agent.ts), bound as theirs is. */
const PULL = { max_messages: 100, expires: 300_000, idle_heartbeat: 30_000, bind: true } as const;
const HOSTS = 4;

interface HostConfig {
  url: string;
  from: number;
  count: number;
}

/** A host process: `count` connections, each with its consumer and its pull. */
async function host(h: HostConfig): Promise<void> {
  const held: NatsConnection[] = [];
  let next = h.from;
  const end = h.from + h.count;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < end) {
        const i = next++;
        // The agents' PING interval (linkCheck.ts): no client PINGs in the window.
        const nc = await connect({ servers: h.url, pingInterval: 600_000 });
        const name = `c${i}`;
        await (await jetstreamManager(nc)).consumers.add(STREAM, { durable_name: name, filter_subject: `floor.${i}`, ack_policy: AckPolicy.Explicit, max_ack_pending: 1 });
        const messages = await (await jetstream(nc).consumers.get(STREAM, name)).consume(PULL);
        void (async () => {
          for await (const m of messages) m.ack();
        })().catch(() => undefined);
        held.push(nc);
      }
    }),
  );
  process.send?.({ ready: held.length });
  // Held until the parent kills this process.
  setInterval(() => undefined, 1 << 30);
}

async function main(): Promise<void> {
  const { values } = parseCli("idleFloor", "node dist/scripts/bench/idleFloor.js [--n 10000] [--idle-s 120]", {
    n: { type: "string", default: "10000" },
    "idle-s": { type: "string", default: "120" },
  });
  const n = Number(values.n);
  const idleS = Number(values["idle-s"]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n: "${values.n}" is not a whole number >= 1`);
  if (!(idleS > 0)) throw new Error(`--idle-s: "${values["idle-s"]}" is not a number > 0`);
  const server = await startBenchNatsServer();
  const kids: ChildProcess[] = [];
  try {
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: ["floor.>"], max_consumers: -1 });
    await nc.close();
    const per = Math.ceil(n / HOSTS);
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: HOSTS }, (_, i) => {
        const config: HostConfig = { url: server.url, from: i * per, count: Math.max(0, Math.min(per, n - i * per)) };
        const kid = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, IDLE_FLOOR_HOST: JSON.stringify(config) } });
        kids.push(kid);
        return new Promise<void>((resolve, reject) => {
          kid.once("message", () => resolve());
          kid.once("exit", (code) => reject(new Error(`idle floor host ${i} exited with ${code}`)));
        });
      }),
    );
    console.log(`idle floor: ${n} connections, each with a waiting pull (idle heartbeat ${PULL.idle_heartbeat / 1000} s), after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(5000);
    const varz = async (): Promise<{ in_msgs: number; out_msgs: number; mem: number }> => (await fetch(`${server.monitorUrl}/varz`)).json() as Promise<{ in_msgs: number; out_msgs: number; mem: number }>;
    const v0 = await varz();
    const c0 = cpuSecondsOf(server.pid) ?? NaN;
    const w0 = performance.now();
    await sleep(idleS * 1000);
    const c1 = cpuSecondsOf(server.pid) ?? NaN;
    const s = (performance.now() - w0) / 1000;
    const v1 = await varz();
    console.log(
      `idle floor: nats-server ${(((c1 - c0) / s) * 100).toFixed(1)} % of a core over ${s.toFixed(0)} s; ` +
        `${((v1.in_msgs - v0.in_msgs) / s).toFixed(1)} messages/s in, ${((v1.out_msgs - v0.out_msgs) / s).toFixed(1)} out; RSS ${Math.round(v1.mem / 1e6)} MB`,
    );
  } finally {
    for (const k of kids) k.kill("SIGKILL");
    await server.stop();
  }
}

const hostConfig = process.env.IDLE_FLOOR_HOST;
(hostConfig ? host(JSON.parse(hostConfig) as HostConfig) : main().then(() => process.exit(0))).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
