// The scale case, run as its own child process (node --max-old-space-size):
// its own nats-server, the coordinator as a child process, N agents spread
// over several agent-host processes, one fan-out deployment of all of them.
// Reports over IPC: time, how far it got, coordinator and nats-server RSS.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBenchNatsServer } from "./natsServer.js";
import { runOurs, type OursResult } from "./ours.js";
import { memOf } from "./procs.js";
import { startCoordinatorProc } from "./stack.js";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";

/** Size of the deployment's KV projection (one JSON value). */
async function projectionSize(url: string, id: string): Promise<number | undefined> {
  const nc = await connect({ servers: url });
  try {
    const kv = await new Kvm(jetstream(nc)).open("deploy_deployments");
    return (await kv.get(id))?.length;
  } finally {
    await nc.close();
  }
}

export interface ScaleConfig {
  n: number;
  hostProcesses: number;
  /** nats-server max_payload in bytes; 0 = the server default (1 MB). */
  maxPayload: number;
  timeoutMs: number;
  cpuProfDir?: string;
}

export interface ScaleResult extends OursResult {
  n: number;
  completed: boolean;
  maxPayload: number;
  coordinatorRssMb?: number;
  coordinatorPeakRssMb?: number;
  natsServerRssMb?: number;
  natsServerPeakRssMb?: number;
  /** RSS of all agent-host processes with every agent idle and running. */
  agentHostsRssMb?: number;
  projectionBytes?: number;
  progress: { s: number; events: number }[];
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.BENCH_SCALE ?? "") as ScaleConfig;
  const nats = await startBenchNatsServer(cfg.maxPayload > 0 ? { configText: `max_payload: ${cfg.maxPayload}\n` } : {});
  const stateRoot = await mkdtemp(join(tmpdir(), "bench-scale-"));
  const coord = await startCoordinatorProc(nats.url, { heapMb: 4096, ...(cfg.cpuProfDir ? { cpuProfDir: cfg.cpuProfDir } : {}) });
  const progress: { s: number; events: number }[] = [];
  let hostPids: number[] = [];
  let agentHostsRssMb: number | undefined;
  try {
    const r = await runOurs({
      natsUrl: nats.url,
      client: coord.client,
      stateRoot,
      n: cfg.n,
      shape: "fanout",
      hostProcesses: cfg.hostProcesses,
      hostHeapMb: 4096,
      timeoutMs: cfg.timeoutMs,
      cpuPids: { coordinator: coord.proc.pid, natsServer: nats.pid },
      probeGetEveryMs: 2000,
      onAgentsReady: (h) => {
        hostPids = h.procs.map((p) => p.pid);
        agentHostsRssMb = hostPids.map((p) => memOf(p)?.rssMb ?? 0).reduce((a, b) => a + b, 0);
        process.stderr.write(`scale: ${cfg.n} agents running after ${h.startMs} ms\n`);
      },
      onTick: (ms, events) => {
        const s = Math.round(ms / 1000);
        if (s % 10 === 0) {
          progress.push({ s, events });
          process.stderr.write(`scale: ${s} s, ${events} events watched\n`);
        }
      },
    });
    const c = memOf(coord.proc.pid);
    const ns = memOf(nats.pid);
    const projectionBytes = await projectionSize(nats.url, r.deploymentId).catch(() => undefined);
    const result: ScaleResult = {
      ...r,
      n: cfg.n,
      completed: !r.timedOut && r.state === "DEPLOYMENT_STATE_SUCCEEDED",
      maxPayload: cfg.maxPayload,
      coordinatorRssMb: c?.rssMb,
      coordinatorPeakRssMb: c?.peakRssMb,
      natsServerRssMb: ns?.rssMb,
      natsServerPeakRssMb: ns?.peakRssMb,
      agentHostsRssMb,
      projectionBytes,
      progress,
    };
    process.send?.({ scale: result });
  } catch (err) {
    // What the coordinator said about it: its warnings and failed calls.
    const said = coord.proc
      .logs()
      .split("\n")
      .filter((l) => /"level":(40|50)|call failed/.test(l) && !/command not published yet/.test(l))
      .slice(-20)
      .join("\n");
    throw new Error(`${err instanceof Error ? err.message : String(err)}\ncoordinator warnings and failed calls (last 20):\n${said}`, { cause: err });
  } finally {
    await coord.stop();
    await nats.stop();
    await rm(stateRoot, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.send?.({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  },
);
