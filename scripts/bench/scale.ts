// The scale case, run as its own child process (node --max-old-space-size):
// its own nats-server, the coordinator as a child process, N agents spread
// over several agent-host processes. On that one server, in order:
// 1. the floors at N (bare and apply; protocol with cfg.protocolFloor), their
//    consumers spread over as many processes as the agents;
// 2. the N agents started; the idle fleet measured over cfg.idleMs;
// 3. one fan-out deployment of all of them (cold), then a second (warm);
// 4. liveness: one more agent (serving an app of its own, so no deployment
//    targets it) stops as the idle window starts; the time until the
//    coordinator shows it not live.
// Reports over IPC: times, counts by target state, CPU seconds and peak RSS
// of the coordinator and nats-server, JetStream work per target.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runFloors, warmUpFloor, type FloorResult } from "./floor.js";
import { measureIdle, measureLiveness, type IdleResult, type LivenessResult } from "./idle.js";
import { startBenchNatsServer } from "./natsServer.js";
import { ENVIRONMENT, probeAppOf, runOurs, type OursResult } from "./ours.js";
import { cpuSecondsOf, memOf, resetPeakRss } from "./procs.js";
import { agentId, SCALE_ADMIT_AT_ONCE, startCoordinatorProc } from "./stack.js";
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
  /** The agents' heartbeat while applying. */
  heartbeatMs: number;
  /** The agents' heartbeat when idle. */
  idleHeartbeatMs: number;
  agentLiveMs: number;
  /** Also the protocol floor at N (slow at 10,000). */
  protocolFloor: boolean;
  /** Stop a probe agent as the idle window starts and time its detection. */
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
  idleError?: string;
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
  let livenessRun: Promise<LivenessResult> | undefined;
  let idleError: string | undefined;
  try {
    await warmUpFloor(nats.url);
    const kinds = ["bare", "apply", ...(cfg.protocolFloor ? ["protocol" as const] : [])] as const;
    say(`floors (${kinds.join(", ")}), fan-out ${cfg.n}`);
    try {
      Object.assign(floors, await runFloors(nats.url, cfg.n, "fanout", [...kinds], { hostProcesses: cfg.hostProcesses, monitorUrl: nats.monitorUrl, timeoutMs: cfg.timeoutMs }));
      say(`floors: ${kinds.map((k) => `${k} ${Math.round(floors[k]?.ms ?? NaN)} ms`).join(", ")}`);
    } catch (err) {
      floors.errors.push(err instanceof Error ? err.message.slice(0, 1000) : String(err));
      say(`floors FAILED: ${floors.errors.at(-1)!}`);
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
      admitAtOnce: SCALE_ADMIT_AT_ONCE,
      heartbeatMs: cfg.heartbeatMs,
      idleHeartbeatMs: cfg.idleHeartbeatMs,
      timeoutMs: cfg.timeoutMs,
      warm: true,
      probeAgent: cfg.liveness,
      cpuPids: { coordinator: coord.proc.pid, natsServer: nats.pid },
      probeGetEveryMs: 2000,
      onAgentsReady: async (h, app) => {
        const hostPids = h.procs.map((p) => p.pid);
        agentHostsRssMb = hostPids.map((p) => memOf(p)?.rssMb ?? 0).reduce((a, b) => a + b, 0);
        say(`${cfg.n} agents running after ${h.startMs} ms`);
        if (cfg.liveness) {
          // The probe agent stops now; its detection is timed while the idle
          // fleet is measured and the deployments run (agentLiveMs is long).
          livenessRun = measureLiveness({
            client: coord.client,
            host: h.procs.at(-1)!,
            agentId: agentId(h.prefix, cfg.n),
            app: probeAppOf(app),
            environment: ENVIRONMENT,
            limitMs: cfg.agentLiveMs,
            pollMs: Math.max(250, Math.min(2000, cfg.agentLiveMs / 20)),
          }).catch((err: unknown) => ({ agentId: agentId(h.prefix, cfg.n), limitMs: cfg.agentLiveMs, error: String(err).slice(0, 500) }));
        }
        if (cfg.idleMs > 0) {
          say(`idle fleet: ${cfg.idleMs / 1000} s`);
          try {
            idle = await measureIdle({
              client: coord.client,
              app,
              environment: ENVIRONMENT,
              n: cfg.n,
              ms: cfg.idleMs,
              pids: { coordinator: coord.proc.pid, natsServer: nats.pid },
              agentHostPids: hostPids,
              monitorUrl: nats.monitorUrl,
              heartbeatMs: cfg.idleHeartbeatMs,
              agentLiveMs: cfg.agentLiveMs,
            });
            say(`idle fleet: ${JSON.stringify(idle.cpuPct)} % of a core; nats-server every 10 s: ${idle.natsServerSamplesPct?.join(" ") ?? "-"} %`);
          } catch (err) {
            idleError = String(err).slice(0, 500);
            say(`idle fleet FAILED: ${idleError}`);
          }
        }
      },
      afterDeployments: async () => {
        liveness = await livenessRun;
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
      ...(idleError ? { idleError } : {}),
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

// A signal exits through process.exit, so the child processes' exit hook
// (scripts/lib/childProc.ts) kills the nats-server, coordinator and hosts.
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => process.exit(130));

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.send?.({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  },
);
