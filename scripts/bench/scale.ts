// The scale case, run as its own child process (node --max-old-space-size):
// its own nats-server, the coordinator as a child process, N agents spread
// over several agent-host processes. On that one server, in order:
// 1. the floors at N (bare and apply; protocol with cfg.protocolFloor), their
//    consumers spread over as many processes as the agents;
// 2. the N agents started; the idle fleet measured over cfg.idleMs;
// 3. one fan-out deployment of all of them (cold), then a second (warm);
// 4. one agent stopped, and the time until the coordinator shows it not live.
// Reports over IPC: times, counts by target state, CPU seconds and peak RSS
// of the coordinator and nats-server, JetStream work per target.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runFloor, warmUpFloor, type FloorResult } from "./floor.js";
import { measureIdle, measureLiveness, type IdleResult, type LivenessResult } from "./idle.js";
import { startBenchNatsServer } from "./natsServer.js";
import { ENVIRONMENT, runOurs, type OursResult } from "./ours.js";
import { cpuSecondsOf, memOf, resetPeakRss } from "./procs.js";
import { agentId, startCoordinatorProc } from "./stack.js";
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
  /** The idle fleet's window (0: not measured). */
  idleMs: number;
  heartbeatMs: number;
  agentLiveMs: number;
  /** Also the protocol floor at N (slow at 10,000). */
  protocolFloor: boolean;
  /** Stop one agent after the deployments and time its detection. */
  liveness: boolean;
  cpuProfDir?: string;
}

export interface ScaleResult extends OursResult {
  n: number;
  completed: boolean;
  /** Both deployments (cold and warm) SUCCEEDED within the time limit. */
  completedWarm: boolean;
  maxPayload: number;
  floors: { bare?: FloorResult; apply?: FloorResult; protocol?: FloorResult; errors: string[] };
  /** Over both deployments, from the agents' start to the end (peak RSS reset after the floors). */
  coordinatorCpuS?: number;
  natsServerCpuS?: number;
  coordinatorRssMb?: number;
  coordinatorPeakRssMb?: number;
  natsServerRssMb?: number;
  natsServerPeakRssMb?: number;
  /** Whether the peaks could be reset after the floors (else they include the floors'). */
  peakResetAfterFloors: boolean;
  /** RSS of all agent-host processes with every agent idle and running. */
  agentHostsRssMb?: number;
  projectionBytes?: number;
  idle?: IdleResult;
  liveness?: LivenessResult;
  progress: { s: number; events: number }[];
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.BENCH_SCALE ?? "") as ScaleConfig;
  const nats = await startBenchNatsServer(cfg.maxPayload > 0 ? { configText: `max_payload: ${cfg.maxPayload}\n` } : {});
  const stateRoot = await mkdtemp(join(tmpdir(), "bench-scale-"));
  const coord = await startCoordinatorProc(nats.url, { heapMb: 4096, agentLiveMs: cfg.agentLiveMs, ...(cfg.cpuProfDir ? { cpuProfDir: cfg.cpuProfDir } : {}) });
  const say = (s: string): void => void process.stderr.write(`scale: ${s}\n`);
  const progress: { s: number; events: number }[] = [];
  const floors: ScaleResult["floors"] = { errors: [] };
  let agentHostsRssMb: number | undefined;
  let idle: IdleResult | undefined;
  let liveness: LivenessResult | undefined;
  try {
    await warmUpFloor(nats.url);
    for (const kind of ["bare", "apply", ...(cfg.protocolFloor ? ["protocol" as const] : [])] as const) {
      say(`${kind} floor, fan-out ${cfg.n}`);
      try {
        floors[kind] = await runFloor(nats.url, cfg.n, "fanout", { kind, hostProcesses: cfg.hostProcesses, monitorUrl: nats.monitorUrl });
        say(`${kind} floor: ${Math.round(floors[kind].ms)} ms`);
      } catch (err) {
        floors.errors.push(`${kind}: ${err instanceof Error ? err.message.slice(0, 1000) : String(err)}`);
      }
    }
    const peakResetAfterFloors = resetPeakRss(nats.pid) && resetPeakRss(coord.proc.pid);
    const cpu0 = { coordinator: cpuSecondsOf(coord.proc.pid) ?? 0, natsServer: cpuSecondsOf(nats.pid) ?? 0 };
    const r = await runOurs({
      natsUrl: nats.url,
      monitorUrl: nats.monitorUrl,
      client: coord.client,
      stateRoot,
      n: cfg.n,
      shape: "fanout",
      hostProcesses: cfg.hostProcesses,
      hostHeapMb: 4096,
      heartbeatMs: cfg.heartbeatMs,
      timeoutMs: cfg.timeoutMs,
      warm: true,
      cpuPids: { coordinator: coord.proc.pid, natsServer: nats.pid },
      probeGetEveryMs: 2000,
      onAgentsReady: async (h, app) => {
        const hostPids = h.procs.map((p) => p.pid);
        agentHostsRssMb = hostPids.map((p) => memOf(p)?.rssMb ?? 0).reduce((a, b) => a + b, 0);
        say(`${cfg.n} agents running after ${h.startMs} ms`);
        if (cfg.idleMs > 0) {
          say(`idle fleet: ${cfg.idleMs / 1000} s`);
          idle = await measureIdle({
            client: coord.client,
            app,
            environment: ENVIRONMENT,
            n: cfg.n,
            ms: cfg.idleMs,
            pids: { coordinator: coord.proc.pid, natsServer: nats.pid },
            agentHostPids: hostPids,
            monitorUrl: nats.monitorUrl,
            heartbeatMs: cfg.heartbeatMs,
            agentLiveMs: cfg.agentLiveMs,
          });
          say(`idle fleet: ${JSON.stringify(idle.cpuPct)} % of a core`);
        }
      },
      afterDeployments: async (h, app) => {
        if (!cfg.liveness) return;
        say("one agent stopped: waiting for the coordinator to see it not live");
        liveness = await measureLiveness({
          client: coord.client,
          host: h.procs[0]!,
          agentId: agentId(h.prefix, 0),
          app,
          environment: ENVIRONMENT,
          limitMs: cfg.agentLiveMs,
          pollMs: Math.max(250, Math.min(5000, cfg.agentLiveMs / 20)),
        });
      },
      onTick: (ms, events) => {
        const s = Math.round(ms / 1000);
        if (s % 10 === 0) {
          progress.push({ s, events });
          say(`${s} s, ${events} events watched`);
        }
      },
    });
    const c = memOf(coord.proc.pid);
    const ns = memOf(nats.pid);
    const projectionBytes = await projectionSize(nats.url, r.deploymentId).catch(() => undefined);
    const completed = !r.timedOut && r.state === "DEPLOYMENT_STATE_SUCCEEDED";
    const result: ScaleResult = {
      ...r,
      n: cfg.n,
      completed,
      completedWarm: completed && r.warm?.state === "DEPLOYMENT_STATE_SUCCEEDED",
      maxPayload: cfg.maxPayload,
      floors,
      coordinatorCpuS: Math.round(((cpuSecondsOf(coord.proc.pid) ?? NaN) - cpu0.coordinator) * 10) / 10,
      natsServerCpuS: Math.round(((cpuSecondsOf(nats.pid) ?? NaN) - cpu0.natsServer) * 10) / 10,
      coordinatorRssMb: c?.rssMb,
      coordinatorPeakRssMb: c?.peakRssMb,
      natsServerRssMb: ns?.rssMb,
      natsServerPeakRssMb: ns?.peakRssMb,
      peakResetAfterFloors,
      agentHostsRssMb,
      projectionBytes,
      ...(idle ? { idle } : {}),
      ...(liveness ? { liveness } : {}),
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
