// `npm run bench`: our overhead against the raw JetStream floor, on the same
// nats-server and client library, in one run (issue 5).
//
//   node dist/scripts/bench.js [--quick] [--no-scale] [--out <file>]
//        [--shapes fanout:10,sequential:100] [--scale-n 10000]
//        [--scale-timeout-s 600] [--shape-timeout-s 180] [--scale-max-payload <bytes>] [--cpu-prof <dir>]
//        [--shape-hosts <agents per host process>]
//
// --quick: fan-out and sequential at N = 10, a small API run, no scale case
// (what test/bench-smoke.test.ts runs). --cpu-prof writes the coordinator's
// CPU profiles (node --cpu-prof) into <dir>. Prints a table and writes
// bench/results.json (bench/results.quick.json with --quick).
//
// --shape-hosts K spreads a shape's agents over ceil(N / K) agent-host
// processes (default 250: one host up to N = 250, four at N = 1,000; 0: all
// in one). Each apply forks /bin/true, and libuv's
// spawn blocks its event loop until the child has exec'd (1.5-25 ms on this
// loaded 2-core machine), so 1,000 agents in one process apply one after
// another, which no fleet of VMs does. Fan-out 1000, same code: 10.2 s in one
// host and 6.3 s in four (--shape-hosts 250) on a loaded machine (load ~7);
// 5.3 s and 5.0 s on a quiet one (load ~2); with one dispatch event, 5.5 s
// in one host and 3.9 s in four (fault suite running alongside).
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { runApi, type ApiResult } from "./bench/api.js";
import { runFloor, type Shape } from "./bench/floor.js";
import { runFootprint, type FootprintResult } from "./bench/footprint.js";
import { runBundleFootprint, type BundleFootprintResult } from "./bench/bundleFootprint.js";
import { natsServerVersion, startBenchNatsServer } from "./bench/natsServer.js";
import { runOurs, type OursResult } from "./bench/ours.js";
import { NodeProc, memOf, round1 } from "./bench/procs.js";
import type { ScaleConfig, ScaleResult } from "./bench/scale.js";
import { BENCH_AGENT_LIVE_MS, BENCH_HEARTBEAT_MS, ROOT, startCoordinatorProc } from "./bench/stack.js";
import { table } from "./bench/stats.js";
import type { StageRow, TimelineRow } from "./bench/timeline.js";

interface ShapeResult {
  shape: Shape;
  n: number;
  maxConcurrency: number;
  floorMs: number;
  /** The floor plus, per target in raw JetStream, the work the invariants require (journal fsyncs, look, claim, started, /bin/true). */
  protocolFloorMs: number;
  oursMs: number;
  ratio: number;
  /** ours / protocol floor: what the product's own code costs beyond the protocol. */
  ratioProtocol: number;
  oursState: string;
  oursEvents: number;
  agentStartMs: number;
  perTargetFloorMs: number;
  perTargetOursMs: number;
  /** CPU seconds each process used during ours' timed part. */
  oursCpuS?: Record<string, number>;
  /** Ours' events by type: count, first and last ms after the CreateDeployment call. */
  oursTimeline?: TimelineRow[];
  /** Each target's stages in ours: p50 and p90 ms over the targets. */
  oursStages?: StageRow[];
  /**
   * A second deployment to the same agents right after the first (which is
   * what oursMs times: agents fresh from their start). An agent on a VM is
   * warm like this at every deployment after its first.
   */
  oursWarmMs?: number;
  ratioProtocolWarm?: number;
  oursWarmStages?: StageRow[];
}

export interface BenchResults {
  quick: boolean;
  startedAt: string;
  durationS: number;
  machine: Record<string, string | number>;
  setup: Record<string, string | number>;
  shapes: ShapeResult[];
  scale?: ScaleResult | { error: string };
  api?: ApiResult;
  footprint?: FootprintResult;
  bundleFootprint?: BundleFootprintResult | { error: string };
  coordinator?: { rssMb?: number; peakRssMb?: number };
  natsServer?: { rssMb?: number; peakRssMb?: number };
  goals: { goal: string; met: boolean | null; figure: string }[];
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

function parseShapes(s: string): { shape: Shape; n: number }[] {
  return s.split(",").map((p) => {
    const [shape, n] = p.split(":");
    if ((shape !== "fanout" && shape !== "sequential") || !Number(n)) throw new Error(`--shapes: bad entry "${p}"`);
    return { shape, n: Number(n) };
  });
}

async function execTrueMs(count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await new Promise<void>((res, rej) => spawn("/bin/true", { stdio: "ignore" }).once("exit", () => res()).once("error", rej));
  }
  return (performance.now() - t0) / count;
}

async function runScale(cfg: ScaleConfig): Promise<ScaleResult | { error: string }> {
  const proc = new NodeProc("scale", join(ROOT, "dist/scripts/bench/scale.js"), {
    ipc: true,
    nodeArgs: ["--max-old-space-size=4096"],
    env: { BENCH_SCALE: JSON.stringify(cfg), ...(process.env.NATS_SERVER_BIN ? { NATS_SERVER_BIN: process.env.NATS_SERVER_BIN } : {}) },
  });
  proc.child.stderr!.on("data", (b: Buffer) => process.stderr.write(b));
  const isScale = (m: unknown): m is { scale: ScaleResult } => typeof m === "object" && m !== null && "scale" in m;
  try {
    const m = await proc.waitForMessage(isScale, cfg.timeoutMs + 20 * 60_000);
    await proc.exited;
    return m.scale;
  } catch (err) {
    await proc.kill();
    return { error: (err as Error).message.slice(0, 4000) };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      "no-scale": { type: "boolean", default: false },
      out: { type: "string" },
      shapes: { type: "string" },
      "scale-n": { type: "string", default: "10000" },
      "scale-timeout-s": { type: "string", default: "600" },
      "scale-max-payload": { type: "string", default: String(8 * 1024 * 1024) },
      "scale-hosts": { type: "string", default: "4" },
      "cpu-prof": { type: "string" },
      "no-api": { type: "boolean", default: false },
      "no-footprint": { type: "boolean", default: false },
      "shape-timeout-s": { type: "string", default: "180" },
      "shape-hosts": { type: "string", default: "250" },
    },
  });
  const quick = values.quick;
  const out = resolve(values.out ?? join(ROOT, quick ? "bench/results.quick.json" : "bench/results.json"));
  const shapes = values.shapes
    ? parseShapes(values.shapes)
    : quick
      ? parseShapes("fanout:10,sequential:10")
      : parseShapes("fanout:10,fanout:100,fanout:1000,sequential:100");
  const withScale = !quick && !values["no-scale"];
  const started = new Date();
  const t0 = performance.now();
  const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

  const machine = {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? "?",
    memoryMb: Math.round(totalmem() / 1024 / 1024),
    loadAvg1mAtStart: r2(loadavg()[0]!),
    node: process.version,
    natsServer: natsServerVersion(),
  };
  const results: BenchResults = {
    quick,
    startedAt: started.toISOString(),
    durationS: 0,
    machine,
    setup: {
      coordinator: "child process (dist/services/coordinator/src/main.js), LOG_LEVEL=info, agentLiveMs " + BENCH_AGENT_LIVE_MS,
      agents: `real startAgent() instances in agent-host child processes (dist/scripts/bench/agentHost.js), ${Number(values["shape-hosts"]) > 0 ? `at most ${values["shape-hosts"]} per process` : "all in one"}, deploy executable /bin/true, heartbeat ${BENCH_HEARTBEAT_MS} ms (default 5000), log level warn, UV_THREADPOOL_SIZE 16`,
      floor: "one process: N connections each with a durable pull consumer (max_ack_pending 1) on a DEPLOY_COMMANDS-like stream, js.publish result + ack, one ordered-consumer collector",
      timing: "ours: CreateDeployment call → WatchDeployment stream ends after the terminal event; floor: first command publish → N-th result collected; setup (connections, consumers, agent start) excluded",
    },
    shapes: [],
    goals: [],
  };

  results.machine.execTrueMs = r2(await execTrueMs(20));
  const stateRoot = await mkdtemp(join(tmpdir(), "bench-agents-"));
  const nats = await startBenchNatsServer();
  log(`nats-server ${nats.url}`);
  if (values["cpu-prof"]) await mkdir(values["cpu-prof"], { recursive: true });
  const coord = await startCoordinatorProc(nats.url, values["cpu-prof"] ? { cpuProfDir: resolve(values["cpu-prof"]) } : {});
  try {
    for (const { shape, n } of shapes) {
      log(`floor ${shape} N=${n}`);
      const floorMs = await runFloor(nats.url, n, shape);
      const protocolFloorMs = await runFloor(nats.url, n, shape, { protocol: true });
      log(`floor ${shape} N=${n}: ${r1(floorMs)} ms, protocol floor ${r1(protocolFloorMs)} ms; ours…`);
      const ours: OursResult = await runOurs({
        natsUrl: nats.url,
        client: coord.client,
        stateRoot,
        n,
        shape,
        timeoutMs: Number(values["shape-timeout-s"]) * 1000,
        ...(Number(values["shape-hosts"]) > 0 ? { hostProcesses: Math.ceil(n / Number(values["shape-hosts"])) } : {}),
        cpuPids: { coordinator: coord.proc.pid, natsServer: nats.pid },
        ...(values["cpu-prof"] ? { hostNodeArgs: ["--cpu-prof", `--cpu-prof-dir=${resolve(values["cpu-prof"])}`] } : {}),
        warm: true,
      });
      log(`ours ${shape} N=${n}: ${r1(ours.ms)} ms ${ours.state}${ours.warm ? `; again, warm: ${r1(ours.warm.ms)} ms ${ours.warm.state}` : ""}`);
      results.shapes.push({
        shape,
        n,
        maxConcurrency: shape === "fanout" ? n : 1,
        floorMs: r1(floorMs),
        protocolFloorMs: r1(protocolFloorMs),
        oursMs: r1(ours.ms),
        ratio: r2(ours.ms / floorMs),
        ratioProtocol: r2(ours.ms / protocolFloorMs),
        oursState: ours.timedOut ? `NOT TERMINAL (${JSON.stringify(ours.counts)})` : ours.state,
        oursEvents: ours.events,
        agentStartMs: ours.agentStartMs,
        perTargetFloorMs: r2(floorMs / n),
        perTargetOursMs: r2(ours.ms / n),
        oursCpuS: ours.cpuS,
        ...(ours.timeline ? { oursTimeline: ours.timeline.rows, oursStages: ours.timeline.stages } : {}),
        ...(ours.warm?.state === "DEPLOYMENT_STATE_SUCCEEDED"
          ? { oursWarmMs: r1(ours.warm.ms), ratioProtocolWarm: r2(ours.warm.ms / protocolFloorMs), ...(ours.warm.stages ? { oursWarmStages: ours.warm.stages } : {}) }
          : {}),
      });
    }
    if (!values["no-api"]) {
      log("api latency");
      results.api = await runApi({ natsUrl: nats.url, address: coord.address, stateRoot, clients: quick ? 5 : 50, perClient: quick ? 2 : 10, intervalMs: quick ? 200 : 1000 });
    }
    if (!values["no-footprint"]) {
      log("idle agent footprint");
      results.footprint = await runFootprint({ natsUrl: nats.url, stateRoot, idleMs: quick ? 2000 : 12_000 });
      if (!quick) {
        log("agent footprint while installing a 100 MB bundle");
        results.bundleFootprint = await runBundleFootprint({ natsUrl: nats.url, stateRoot, megabytes: 100 }).catch((err: unknown) => ({ error: String(err) }));
      }
    }
    results.coordinator = memOf(coord.proc.pid);
    results.natsServer = memOf(nats.pid);
  } finally {
    await coord.stop();
    await nats.stop();
    await rm(stateRoot, { recursive: true, force: true });
  }

  if (withScale) {
    const n = Number(values["scale-n"]);
    log(`scale: ${n} agents, one fan-out deployment (child process)`);
    results.scale = await runScale({
      n,
      hostProcesses: Number(values["scale-hosts"]),
      maxPayload: Number(values["scale-max-payload"]),
      timeoutMs: Number(values["scale-timeout-s"]) * 1000,
      ...(values["cpu-prof"] ? { cpuProfDir: resolve(values["cpu-prof"]) } : {}),
    });
  }
  results.durationS = Math.round((performance.now() - t0) / 1000);
  results.goals = goals(results);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(results, null, 2) + "\n");
  process.stdout.write(render(results) + `\nwritten: ${out}\n`);
}

function goals(r: BenchResults): BenchResults["goals"] {
  const g: BenchResults["goals"] = [];
  const worst = r.shapes.reduce((m, s) => Math.max(m, s.ratio), 0);
  g.push({ goal: "ratio ours/floor ≤ 1.5 for every shape", met: r.shapes.length ? worst <= 1.5 : null, figure: `worst ${worst}` });
  if (r.scale) {
    const s = r.scale;
    g.push({ goal: "10,000 agents complete", met: "error" in s ? false : s.completed, figure: "error" in s ? s.error.slice(0, 200) : `${s.n} agents: ${s.state} in ${r1(s.ms / 1000)} s` });
  }
  if (r.footprint) g.push({ goal: "idle agent RSS ≤ 60 MB", met: r.footprint.idleAgentRssMb <= 60, figure: `${r.footprint.idleAgentRssMb} MB` });
  if (r.api) {
    g.push({ goal: `CreateDeployment p99 ≤ 20 ms, ${r.api.clients} clients paced`, met: r.api.create.p99 <= 20, figure: `p99 ${r.api.create.p99} ms` });
    g.push({ goal: `CreateDeployment p99 ≤ 20 ms, ${r.api.clients} clients burst`, met: r.api.burst.create.p99 <= 20, figure: `p99 ${r.api.burst.create.p99} ms` });
  }
  return g;
}

function render(r: BenchResults): string {
  const parts: string[] = [];
  parts.push(`machine: ${r.machine.nproc} cores (${r.machine.cpu}), ${r.machine.memoryMb} MB, node ${r.machine.node}, ${r.machine.natsServer}, /bin/true spawn ${r.machine.execTrueMs} ms`);
  parts.push(
    table(
      ["shape", "N", "floor ms", "protocol floor ms", "ours ms", "ours/floor", "ours/protocol", "floor/target", "ours/target", "state", "ours warm ms", "warm/protocol"],
      r.shapes.map((s) => [
        s.shape,
        s.n,
        s.floorMs,
        s.protocolFloorMs,
        s.oursMs,
        s.ratio,
        s.ratioProtocol,
        s.perTargetFloorMs,
        s.perTargetOursMs,
        s.oursState.replace("DEPLOYMENT_STATE_", ""),
        s.oursWarmMs ?? "-",
        s.ratioProtocolWarm ?? "-",
      ]),
    ),
  );
  parts.push(
    table(
      ["ours: CPU s during the run", "N", "coordinator", "agent host(s)", "nats-server"],
      r.shapes.map((s) => {
        const c = s.oursCpuS ?? {};
        const hosts = Object.entries(c).filter(([k]) => k.startsWith("agentHost")).reduce((a, [, v]) => a + v, 0);
        return [s.shape, s.n, c.coordinator ?? "-", r2(hosts), c.natsServer ?? "-"];
      }),
    ),
  );
  for (const s of r.shapes) {
    if (!s.oursTimeline) continue;
    parts.push(
      table(
        [`ours ${s.shape} ${s.n}: events`, "count", "first ms", "last ms"],
        s.oursTimeline.map((t) => [t.what, t.count, t.firstMs, t.lastMs]),
      ),
    );
    if (s.oursStages?.length) {
      parts.push(table([`ours ${s.shape} ${s.n}: per target`, "n", "p50 ms", "p90 ms"], s.oursStages.map((t) => [t.what, t.n, t.p50Ms, t.p90Ms])));
    }
    if (s.oursWarmStages?.length) {
      parts.push(table([`ours ${s.shape} ${s.n}, warm: per target`, "n", "p50 ms", "p90 ms"], s.oursWarmStages.map((t) => [t.what, t.n, t.p50Ms, t.p90Ms])));
    }
  }
  if (r.scale) {
    const s = r.scale;
    parts.push(
      "error" in s
        ? `scale: FAILED: ${s.error.slice(0, 500)}`
        : `scale: ${s.n} agents fan-out: ${s.completed ? "completed" : "NOT completed"} (${s.state.replace("DEPLOYMENT_STATE_", "")}) in ${r1(s.ms / 1000)} s; ` +
            `coordinator RSS ${s.coordinatorRssMb} MB (peak ${s.coordinatorPeakRssMb}), nats-server RSS ${s.natsServerRssMb} MB (peak ${s.natsServerPeakRssMb}); ` +
            `agent start ${r1(s.agentStartMs / 1000)} s; projection ${s.projectionBytes ?? "?"} bytes; counts ${JSON.stringify(s.counts)}` +
            (s.getDuringRollout
              ? `; GetDeployment during the rollout (one call every 2 s): ${s.getDuringRollout.n} answered, p50 ${r1(s.getDuringRollout.p50)} ms, max ${r1(s.getDuringRollout.max)} ms, ${s.getDuringRollout.failed} failed`
              : ""),
    );
  }
  if (r.api) {
    parts.push(
      table(
        ["API (" + r.api.clients + " clients)", "load", "calls", "p50 ms", "p99 ms", "max ms", "calls/s"],
        [
          ["CreateDeployment", `paced, 1 per ${r.api.intervalMs} ms each`, r.api.create.n, r.api.create.p50, r.api.create.p99, r.api.create.max, "-"],
          ["GetDeployment", `paced, 1 per ${r.api.intervalMs / 2} ms each`, r.api.get.n, r.api.get.p50, r.api.get.p99, r.api.get.max, "-"],
          ["CreateDeployment", "burst (back to back)", r.api.burst.create.n, r.api.burst.create.p50, r.api.burst.create.p99, r.api.burst.create.max, r.api.burst.createsPerS],
          ["GetDeployment", "burst (back to back)", r.api.burst.get.n, r.api.burst.get.p50, r.api.burst.get.p99, r.api.burst.get.max, r.api.burst.getsPerS],
        ],
      ),
    );
  }
  if (r.footprint) parts.push(`idle agent (own process, after ${r.footprint.idleSeconds} s): RSS ${r.footprint.idleAgentRssMb} MB (peak ${r.footprint.idleAgentPeakRssMb} MB)`);
  const b = r.bundleFootprint;
  if (b) {
    parts.push(
      "error" in b
        ? `100 MB bundle footprint: failed (${b.error})`
        : `agent installing a ${b.artifactMb} MB bundle: RSS ${b.idleRssMb} MB idle, peak ${b.peakRssDuringApplyMb} MB during the apply (+${round1(b.peakRssDuringApplyMb - b.idleRssMb)} MB), ${b.applyMs} ms, ${b.state}`,
    );
  }
  parts.push(table(["goal", "met", "figure"], r.goals.map((g) => [g.goal, g.met === null ? "-" : g.met ? "yes" : "NO", g.figure])));
  return parts.join("\n\n");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
