// The bench's results (bench/results.json), its goals (issue 17) with their
// figures and met / not met, and the printed report.
import type { AnsibleResult } from "./ansible.js";
import type { ApiResult } from "./api.js";
import type { BundleFootprintResult } from "./bundleFootprint.js";
import type { FloorResult, Shape } from "./floor.js";
import type { FootprintResult } from "./footprint.js";
import type { JsWork } from "./monitor.js";
import type { OursResult } from "./ours.js";
import { round1 } from "./procs.js";
import type { ScaleResult } from "./scale.js";
import type { SecurityModeResult, SecurityResult } from "./security.js";
import { table } from "./stats.js";
import type { StageRow, TimelineRow } from "./timeline.js";

/** The goal on every ratio: ours / apply floor. */
export const RATIO_GOAL = 1.5;
/** JetStream work per target: messages clients send the server (JetStream API requests included). */
export const WORK_GOAL = 6;
export const IDLE_NATS_GOAL_PCT = 10;
export const IDLE_COORDINATOR_GOAL_PCT = 5;
/** CreateDeployment p99 ≤ this × a bare unary call that makes one publish. */
export const API_GOAL_FACTOR = 2;
export const ROUND_TRIPS_GOAL = 2;
/**
 * Sequential round trips to nats-server a new CreateDeployment makes before
 * it answers, counted in services/coordinator/src/createDeployment.ts (no
 * artifact, a pair with no lock held): the lock (KV create of
 * active.<app>.<env>) together with the request mapping (KV create of
 * req.<hash>, holding the created event), and nothing else: the created
 * event is stored after the answer (CreateOptions.answerEarly). A changeset
 * with an artifact adds one before them (the object store's info); a
 * deployment with strategy.auto_revert or target chunks, one after them
 * (the created event, stored before the answer).
 */
export const CREATE_ROUND_TRIPS = 1;
export const FULL_RUN_GOAL_S = 20 * 60;

export interface ShapeResult {
  shape: Shape;
  n: number;
  maxConcurrency: number;
  /** The bare floor: publish, deliver, result, ack. */
  floorMs: number;
  /** The bare floor with, per consumer, one fdatasync'd record and /bin/true spawned and waited for. */
  applyFloorMs: number;
  /** The floor plus, per target in raw JetStream, our protocol's work (journal fsyncs, the race: a started event by compare-and-set, /bin/true). */
  protocolFloorMs?: number;
  /** Agents fresh from their start. */
  oursMs: number;
  oursState: string;
  /** Target counts by state of the cold deployment. */
  oursCounts?: Record<string, number>;
  /** A second deployment to the same agents right after: every process has run its code once. */
  oursWarmMs?: number;
  oursWarmState?: string;
  ratioApply: number;
  ratioApplyWarm?: number;
  ratio: number;
  ratioProtocol?: number;
  ratioProtocolWarm?: number;
  oursEvents: number;
  agentStartMs: number;
  hostProcesses: number;
  /** JetStream work during each run (monitor.ts). */
  work: { bare?: JsWork; apply?: JsWork; protocol?: JsWork; ours?: JsWork; oursWarm?: JsWork };
  oursCpuS?: Record<string, number>;
  oursTimeline?: TimelineRow[];
  oursStages?: StageRow[];
  oursWarmStages?: StageRow[];
}

/**
 * A fan-out whose deployments install a bundle (OursOptions.bundleMb): each
 * agent downloads it (batched direct gets), checks its digest, unpacks it
 * and switches its release. No goal; beside it, the same fan-out without a
 * bundle in the same run, when the shapes ran it.
 */
export interface BundleRolloutResult {
  n: number;
  mb: number;
  hostProcesses: number;
  ms: number;
  state: string;
  warmMs?: number;
  warmState?: string;
  counts?: Record<string, number>;
  unsuccessful?: string[];
  work: { cold?: JsWork; warm?: JsWork };
  cpuS?: Record<string, number>;
  warmCpuS?: Record<string, number>;
  stages?: StageRow[];
  warmStages?: StageRow[];
  /** The same fan-out without a bundle, this run (cold, warm). */
  withoutMs?: number;
  withoutWarmMs?: number;
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
  /** The cost of security: a fan-out and paced CreateDeployment with security off and on (security.ts). */
  security?: SecurityResult;
  ansible?: AnsibleResult;
  footprint?: FootprintResult;
  bundleFootprint?: BundleFootprintResult | { error: string };
  bundleRollout?: BundleRolloutResult | { error: string };
  coordinator?: { rssMb?: number; peakRssMb?: number };
  natsServer?: { rssMb?: number; peakRssMb?: number };
  goals: { goal: string; met: boolean | null; figure: string }[];
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
const SUCCEEDED = "DEPLOYMENT_STATE_SUCCEEDED";
const fmtMs = (ms: number | undefined): string => (ms === undefined ? "-" : ms >= 10_000 ? `${round1(ms / 1000)} s` : `${round1(ms)} ms`);
const label = (s: { shape: Shape; n: number }): string => `${s.shape === "fanout" ? "fan-out" : "sequential"} ${s.n.toLocaleString("en-US")}`;
const stateOf = (s: string | undefined): string => (s ?? "-").replace(/DEPLOYMENT_STATE_/g, "");
/** A few of the targets that did not succeed, and why (OursResult.unsuccessful). */
const examples = (xs: string[] | undefined): string => (xs?.length ? `; e.g. ${xs.join(" | ")}` : "");

/** A shape's row from its parts; ratios only where both sides exist. */
export function shapeRow(
  p: Omit<ShapeResult, "ratioApply" | "ratioApplyWarm" | "ratio" | "ratioProtocol" | "ratioProtocolWarm" | "floorMs" | "applyFloorMs" | "protocolFloorMs"> & {
    floors: { bare?: FloorResult; apply?: FloorResult; protocol?: FloorResult };
  },
): ShapeResult {
  const { floors, ...rest } = p;
  const bare = floors.bare?.ms ?? NaN;
  const apply = floors.apply?.ms ?? NaN;
  const protocol = floors.protocol?.ms;
  const warm = p.oursWarmState === SUCCEEDED ? p.oursWarmMs : undefined;
  return {
    ...rest,
    oursMs: round1(p.oursMs),
    ...(p.oursWarmMs !== undefined ? { oursWarmMs: round1(p.oursWarmMs) } : {}),
    floorMs: round1(bare),
    applyFloorMs: round1(apply),
    ...(protocol !== undefined ? { protocolFloorMs: round1(protocol) } : {}),
    ratioApply: r2(p.oursMs / apply),
    ...(warm !== undefined ? { ratioApplyWarm: r2(warm / apply) } : {}),
    ratio: r2(p.oursMs / bare),
    ...(protocol !== undefined ? { ratioProtocol: r2(p.oursMs / protocol) } : {}),
    ...(protocol !== undefined && warm !== undefined ? { ratioProtocolWarm: r2(warm / protocol) } : {}),
    work: { ...p.work, ...(floors.bare?.work ? { bare: floors.bare.work } : {}), ...(floors.apply?.work ? { apply: floors.apply.work } : {}), ...(floors.protocol?.work ? { protocol: floors.protocol.work } : {}) },
  };
}

export function bundleRolloutRow(o: OursResult, n: number, mb: number, hostProcesses: number, without: ShapeResult | undefined): BundleRolloutResult {
  return {
    n,
    mb,
    hostProcesses,
    ms: round1(o.ms),
    state: o.timedOut ? `NOT TERMINAL (${o.state})` : o.state,
    ...(o.warm ? { warmMs: round1(o.warm.ms), warmState: o.warm.state } : {}),
    ...(o.counts ? { counts: o.counts } : {}),
    ...(o.unsuccessful ? { unsuccessful: o.unsuccessful } : {}),
    work: { ...(o.work ? { cold: o.work } : {}), ...(o.warm?.work ? { warm: o.warm.work } : {}) },
    ...(o.cpuS ? { cpuS: o.cpuS } : {}),
    ...(o.warm?.cpuS ? { warmCpuS: o.warm.cpuS } : {}),
    ...(o.timeline ? { stages: o.timeline.stages } : {}),
    ...(o.warm?.stages ? { warmStages: o.warm.stages } : {}),
    ...(without ? { withoutMs: without.oursMs, ...(without.oursWarmMs !== undefined ? { withoutWarmMs: without.oursWarmMs } : {}) } : {}),
  };
}

/** The bundle rollout's line of the report. */
export function renderBundleRollout(b: BundleRolloutResult | { error: string }): string {
  if ("error" in b) return `bundle rollout: failed (${b.error.split("\n")[0]})`;
  const vs = (ms: number | undefined, without: number | undefined): string => (ms !== undefined && without !== undefined ? ` (${r2(ms / without)}× the ${fmtMs(without)} without a bundle)` : "");
  const work = (w: JsWork | undefined): string => (w ? `${w.inPerTarget} messages to the server and ${round1(w.outBytesPerTarget / 1024)} KiB from it a target` : "-");
  const cpu = (c: Record<string, number> | undefined): string => (c ? Object.entries(c).map(([k, v]) => `${k} ${v} s`).join(", ") : "-");
  const stages = (xs: StageRow[] | undefined): string => (xs ? xs.map((x) => `${x.what.split(" (")[0]} p50 ${fmtMs(x.p50Ms)}`).join(", ") : "-");
  return (
    `bundle rollout: fan-out ${b.n.toLocaleString("en-US")}, a ${b.mb} MB bundle, ${b.hostProcesses} agent host process(es): ` +
    `cold ${fmtMs(b.ms)} ${stateOf(b.state)}${vs(b.ms, b.withoutMs)}, warm ${fmtMs(b.warmMs)} ${stateOf(b.warmState)}${vs(b.warmMs, b.withoutWarmMs)}${examples(b.unsuccessful)}; ` +
    `cold: ${work(b.work.cold)}; CPU ${cpu(b.cpuS)}; ${stages(b.stages)}; warm: ${work(b.work.warm)}; CPU ${cpu(b.warmCpuS)}; ${stages(b.warmStages)}`
  );
}

export function goals(r: BenchResults): BenchResults["goals"] {
  const g: BenchResults["goals"] = [];
  // (1) ours / apply floor, cold and warm.
  for (const s of r.shapes) {
    const coldOk = s.oursState === SUCCEEDED;
    g.push({
      goal: `ours/apply floor ≤ ${RATIO_GOAL}, ${label(s)}, cold`,
      met: coldOk && Number.isFinite(s.ratioApply) ? s.ratioApply <= RATIO_GOAL : false,
      figure: coldOk ? `${s.ratioApply} (${fmtMs(s.oursMs)} / ${fmtMs(s.applyFloorMs)})` : `ours ${stateOf(s.oursState)}`,
    });
    g.push({
      goal: `ours/apply floor ≤ ${RATIO_GOAL}, ${label(s)}, warm`,
      met: s.ratioApplyWarm !== undefined && Number.isFinite(s.ratioApplyWarm) ? s.ratioApplyWarm <= RATIO_GOAL : false,
      figure: s.ratioApplyWarm !== undefined ? `${s.ratioApplyWarm} (${fmtMs(s.oursWarmMs)} / ${fmtMs(s.applyFloorMs)})` : `warm ${stateOf(s.oursWarmState ?? "not run")}`,
    });
  }
  // (2) 10,000 agents complete.
  if (r.scale) {
    const s = r.scale;
    if ("error" in s) g.push({ goal: "10,000 agents complete, cold and warm", met: false, figure: `FAILED: ${s.error.slice(0, 300)}` });
    else {
      const res = `coordinator CPU ${s.coordinatorCpuS} s, nats-server CPU ${s.natsServerCpuS} s, peak RSS coordinator ${s.coordinatorPeakRssMb} MB, nats-server ${s.natsServerPeakRssMb} MB`;
      g.push({
        goal: `${s.n.toLocaleString("en-US")} agents complete, cold and warm`,
        met: s.completed && s.completedWarm,
        figure:
          (s.completed ? `cold ${fmtMs(s.ms)}` : `cold NOT COMPLETE (${stateOf(s.state)}) after ${fmtMs(s.ms)}, targets by state ${JSON.stringify(s.counts)}${examples(s.unsuccessful)}`) +
          (s.warm ? (s.completedWarm ? `, warm ${fmtMs(s.warm.ms)}` : `, warm NOT COMPLETE (${stateOf(s.warm.state)}), targets by state ${JSON.stringify(s.warm.counts)}${examples(s.warm.unsuccessful)}`) : ", warm not run") +
          `; ${res}`,
      });
    }
  }
  // (3) JetStream work per target, ours cold (warm in the table).
  for (const s of r.shapes) {
    const w = s.work.ours;
    if (!w) continue;
    g.push({
      goal: `JetStream work ≤ ${WORK_GOAL} messages per target, ${label(s)}`,
      met: w.inPerTarget <= WORK_GOAL,
      figure: `${w.inPerTarget} (of which ${w.apiPerTarget} JS API calls${w.backgroundPerTarget !== undefined ? ` and ≈ ${w.backgroundPerTarget} the idle fleet's heartbeats at its idle rate` : ""}; apply floor ${s.work.apply?.inPerTarget ?? "-"})`,
    });
  }
  // (4) The idle fleet.
  if (r.scale && !("error" in r.scale) && r.scale.idle) {
    const i = r.scale.idle;
    const l = r.scale.liveness;
    const of = `${i.n.toLocaleString("en-US")} idle agents over ${i.seconds} s, idle heartbeat ${i.heartbeatMs / 1000} s`;
    g.push({ goal: `idle fleet: nats-server ≤ ${IDLE_NATS_GOAL_PCT}% of a core`, met: i.cpuPct.natsServer! <= IDLE_NATS_GOAL_PCT, figure: `${i.cpuPct.natsServer}% (${of})` });
    g.push({ goal: `idle fleet: coordinator ≤ ${IDLE_COORDINATOR_GOAL_PCT}% of a core`, met: i.cpuPct.coordinator! <= IDLE_COORDINATOR_GOAL_PCT, figure: `${i.cpuPct.coordinator}% (${of})` });
    g.push({
      goal: `idle fleet: liveness within agentLiveMs (${i.agentLiveMs / 1000} s here)`,
      // Asked every pollMs: a detection up to limit + pollMs is within the
      // limit (the stopped agent had heartbeated just before its stop, run
      // of 14:10: 120,048 ms against 120,000, polled every 2 s).
      met: i.liveAtEnd === i.n && (l ? l.detectedMs !== undefined && l.detectedMs <= l.limitMs + (l.pollMs ?? 0) : true),
      figure:
        `${i.liveAtEnd} of ${i.n} live at the end` +
        (l
          ? l.error
            ? `; stop not timed: ${l.error}`
            : `; a stopped agent seen not live after ${l.detectedMs === undefined ? `more than ${fmtMs(l.limitMs + 30_000)}` : fmtMs(l.detectedMs)}${l.pollMs ? ` (ListAgents asked every ${fmtMs(l.pollMs)})` : ""}`
          : "; stop not timed"),
    });
  }
  if (r.scale && !("error" in r.scale) && r.scale.idleError) g.push({ goal: "idle fleet", met: false, figure: `not measured: ${r.scale.idleError}` });
  // (5) The API.
  if (r.api) {
    const a = r.api;
    g.push({
      goal: `CreateDeployment p99 ≤ ${API_GOAL_FACTOR}× bare unary+publish p99, ${a.clients} clients paced`,
      met: a.create.p99 <= API_GOAL_FACTOR * a.bareUnaryPublish.p99,
      figure:
        `${r2(a.create.p99 / a.bareUnaryPublish.p99)}× (p99 ${a.create.p99} ms vs ${a.bareUnaryPublish.p99} ms; p50 ${a.create.p50} vs ${a.bareUnaryPublish.p50} ms)` +
        (a.besideCreates ? `; the bare call beside paced creates: p99 ${a.besideCreates.bareUnaryPublish.p99} ms, those creates ${a.besideCreates.create.p99} ms` : ""),
    });
  }
  g.push({
    goal: `CreateDeployment sequential round trips ≤ ${ROUND_TRIPS_GOAL}`,
    met: CREATE_ROUND_TRIPS <= ROUND_TRIPS_GOAL,
    figure: `${CREATE_ROUND_TRIPS}, counted in createDeployment.ts: lock ∥ request mapping (holding the created event, stored after the answer)`,
  });
  // (6) The peer.
  if (r.ansible) {
    const a = r.ansible;
    if ("skipped" in a) g.push({ goal: "peer: ours vs Ansible no-op", met: null, figure: `skipped: ${a.skipped}` });
    else {
      const ours = (n: number): ShapeResult | undefined => r.shapes.find((s) => s.shape === "fanout" && s.n === n);
      g.push({
        goal: "peer: ours vs Ansible no-op (fan-out, cold)",
        met: null,
        figure: a.runs.map((x) => `${x.hosts} hosts: ours ${fmtMs(ours(x.hosts)?.oursMs)}, Ansible ${x.ok ? fmtMs(x.ms) : "failed"}`).join("; "),
      });
    }
  }
  if (r.footprint) g.push({ goal: "idle agent RSS ≤ 60 MB", met: r.footprint.idleAgentRssMb <= 60, figure: `${r.footprint.idleAgentRssMb} MB` });
  // (7) The whole run.
  if (!r.quick) g.push({ goal: `full bench < ${FULL_RUN_GOAL_S / 60} minutes on ${r.machine.nproc} cores`, met: r.durationS < FULL_RUN_GOAL_S, figure: `${round1(r.durationS / 60)} min` });
  return g;
}

/** The loud lines: goals that fail by not finishing, printed before the tables. */
export function alarms(r: BenchResults): string[] {
  const out: string[] = [];
  const s = r.scale;
  if (s && "error" in s) out.push(`GOAL FAILED: the scale case did not run to its end: ${s.error.slice(0, 500)}`);
  else if (s && !(s.completed && s.completedWarm)) {
    out.push(
      `GOAL FAILED: ${s.n} agents did not complete: cold ${stateOf(s.state)} ${JSON.stringify(s.counts)}${examples(s.unsuccessful)}` +
        (s.warm ? `, warm ${stateOf(s.warm.state)} ${JSON.stringify(s.warm.counts)}${examples(s.warm.unsuccessful)}` : ""),
    );
  }
  for (const x of r.shapes) if (x.oursState !== SUCCEEDED) out.push(`GOAL FAILED: ${label(x)} ended ${stateOf(x.oursState)} ${JSON.stringify(x.oursCounts ?? {})}`);
  // Not a goal of issue 17, but a rollout that does not succeed is a bug to see at once.
  const b = r.bundleRollout;
  if (b && "error" in b) out.push(`FAILED: the bundle rollout did not run to its end: ${b.error.slice(0, 500)}`);
  else if (b && (b.state !== SUCCEEDED || (b.warmState !== undefined && b.warmState !== SUCCEEDED))) {
    out.push(`FAILED: the bundle rollout ended cold ${stateOf(b.state)}, warm ${stateOf(b.warmState)} ${JSON.stringify(b.counts ?? {})}${examples(b.unsuccessful)}`);
  }
  return out;
}

export function render(r: BenchResults): string {
  const parts: string[] = [];
  parts.push(`machine: ${r.machine.nproc} cores (${r.machine.cpu}), ${r.machine.memoryMb} MB, node ${r.machine.node}, ${r.machine.natsServer}, /bin/true spawn ${r.machine.execTrueMs} ms, load ${r.machine.loadAvg1mAtStart} at the start`);
  parts.push(...alarms(r));
  // No shape rows (e.g. --only security): no empty tables.
  if (r.shapes.length > 0) parts.push(
    table(
      ["shape", "N", "bare floor", "apply floor", "protocol floor", "ours (cold)", "ours/apply", "ours warm", "warm/apply", "ours/bare", "ours/protocol", "state"],
      r.shapes.map((s) => [
        s.shape,
        s.n,
        fmtMs(s.floorMs),
        fmtMs(s.applyFloorMs),
        fmtMs(s.protocolFloorMs),
        fmtMs(s.oursMs),
        `${s.ratioApply} ${s.oursState === SUCCEEDED && s.ratioApply <= RATIO_GOAL ? "met" : "not met"}`,
        fmtMs(s.oursWarmMs),
        s.ratioApplyWarm === undefined ? "- not met" : `${s.ratioApplyWarm} ${s.ratioApplyWarm <= RATIO_GOAL ? "met" : "not met"}`,
        s.ratio,
        s.ratioProtocol ?? "-",
        `${stateOf(s.oursState)}${s.oursWarmState ? ` / ${stateOf(s.oursWarmState)}` : ""}`,
      ]),
    ),
  );
  const w = (x: JsWork | undefined): string => (x ? `${x.inPerTarget} (${x.apiPerTarget})` : "-");
  if (r.shapes.length > 0) parts.push(
    table(
      [`JetStream messages per target (of which API calls); goal ≤ ${WORK_GOAL}`, "N", "bare floor", "apply floor", "protocol floor", "ours", "ours warm", "ours out/target", "goal"],
      r.shapes.map((s) => [s.shape, s.n, w(s.work.bare), w(s.work.apply), w(s.work.protocol), w(s.work.ours), w(s.work.oursWarm), s.work.ours?.outPerTarget ?? "-", s.work.ours ? (s.work.ours.inPerTarget <= WORK_GOAL ? "met" : "not met") : "-"]),
    ),
  );
  // Each stored write is fsync'd (sync_interval: always) and waits its turn on its stream.
  const st = (x: JsWork | undefined): string | number => x?.storedPerTarget ?? "-";
  if (r.shapes.length > 0) parts.push(
    table(
      ["stored writes per target (each fsync'd by the server)", "N", "bare floor", "apply floor", "protocol floor", "ours", "ours warm"],
      r.shapes.map((s) => [s.shape, s.n, st(s.work.bare), st(s.work.apply), st(s.work.protocol), st(s.work.ours), st(s.work.oursWarm)]),
    ),
  );
  if (r.shapes.length > 0) parts.push(
    table(
      ["ours (cold): CPU s during the run", "N", "coordinator", "agent host(s)", "nats-server"],
      r.shapes.map((s) => {
        const c = s.oursCpuS ?? {};
        const hosts = Object.entries(c).filter(([k]) => k.startsWith("agentHost")).reduce((a, [, v]) => a + v, 0);
        return [s.shape, s.n, c.coordinator ?? "-", r2(hosts), c.natsServer ?? "-"];
      }),
    ),
  );
  for (const s of r.shapes) {
    if (s.oursTimeline) parts.push(table([`ours ${s.shape} ${s.n}: events`, "count", "first ms", "last ms"], s.oursTimeline.map((t) => [t.what, t.count, t.firstMs, t.lastMs])));
    if (s.oursStages?.length) parts.push(table([`ours ${s.shape} ${s.n}: per target`, "n", "p50 ms", "p90 ms"], s.oursStages.map((t) => [t.what, t.n, t.p50Ms, t.p90Ms])));
    if (s.oursWarmStages?.length) parts.push(table([`ours ${s.shape} ${s.n}, warm: per target`, "n", "p50 ms", "p90 ms"], s.oursWarmStages.map((t) => [t.what, t.n, t.p50Ms, t.p90Ms])));
  }
  const s = r.scale;
  if (s && !("error" in s)) {
    parts.push(
      `scale: ${s.n} agents fan-out: cold ${s.completed ? "completed" : "NOT completed"} (${stateOf(s.state)}) in ${fmtMs(s.ms)}, warm ${s.warm ? `${stateOf(s.warm.state)} in ${fmtMs(s.warm.ms)}` : "not run"}; ` +
        `coordinator CPU ${s.coordinatorCpuS} s, nats-server CPU ${s.natsServerCpuS} s (both deployments); ` +
        `RSS coordinator ${s.coordinatorRssMb} MB (peak ${s.coordinatorPeakRssMb}), nats-server ${s.natsServerRssMb} MB (peak ${s.natsServerPeakRssMb}${s.peakResetAfterFloors ? "" : ", floors included"}); ` +
        `agent start ${fmtMs(s.agentStartMs)}; projection ${s.projectionBytes ?? "?"} bytes; targets by state ${JSON.stringify(s.counts)}` +
        (s.floors.errors.length ? `; floor errors: ${s.floors.errors.join("; ")}` : "") +
        (s.getDuringRollout ? `; GetDeployment during the cold rollout (every 2 s): ${s.getDuringRollout.n} answered, p50 ${round1(s.getDuringRollout.p50)} ms, max ${round1(s.getDuringRollout.max)} ms, ${s.getDuringRollout.failed} failed` : ""),
    );
    if (s.idle) {
      const i = s.idle;
      parts.push(
        `idle fleet: ${i.n} agents (idle heartbeat ${i.heartbeatMs / 1000} s, agentLiveMs ${i.agentLiveMs / 1000} s) over ${i.seconds} s: nats-server ${i.cpuPct.natsServer}% of a core (goal ≤ ${IDLE_NATS_GOAL_PCT}%: ${i.cpuPct.natsServer! <= IDLE_NATS_GOAL_PCT ? "met" : "not met"}), ` +
          `coordinator ${i.cpuPct.coordinator}% (goal ≤ ${IDLE_COORDINATOR_GOAL_PCT}%: ${i.cpuPct.coordinator! <= IDLE_COORDINATOR_GOAL_PCT ? "met" : "not met"}), agent hosts ${i.cpuPct.agentHosts}%; ` +
          `${i.inMsgsPerS ?? "?"} messages/s to the server (${i.apiPerS ?? "?"} JS API calls/s); ${i.liveAtEnd} of ${i.n} live at the end` +
          (i.natsServerSamplesPct ? `; nats-server every 10 s: ${i.natsServerSamplesPct.join(" ")} %` : "") +
          (s.liveness ? `; a stopped agent seen not live after ${s.liveness.detectedMs === undefined ? "NOT within the limit" : fmtMs(s.liveness.detectedMs)} (limit ${fmtMs(s.liveness.limitMs)})` : ""),
      );
    }
  }
  if (r.bundleRollout) parts.push(renderBundleRollout(r.bundleRollout));
  if (r.api) {
    const a = r.api;
    parts.push(
      table(
        ["API (" + a.clients + " clients)", "load", "calls", "p50 ms", "p99 ms", "max ms", "calls/s"],
        [
          ["bare unary + 1 publish", `paced, 1 per ${a.intervalMs} ms each, in turns`, a.bareUnaryPublish.n, a.bareUnaryPublish.p50, a.bareUnaryPublish.p99, a.bareUnaryPublish.max, "-"],
          ["CreateDeployment", `paced, 1 per ${a.intervalMs} ms each, in turns`, a.create.n, a.create.p50, a.create.p99, a.create.max, "-"],
          ...(a.besideCreates
            ? [
                ["bare unary + 1 publish", `beside ${a.clients} paced creators`, a.besideCreates.bareUnaryPublish.n, a.besideCreates.bareUnaryPublish.p50, a.besideCreates.bareUnaryPublish.p99, a.besideCreates.bareUnaryPublish.max, "-"],
                ["CreateDeployment", `paced, beside ${a.clients} bare callers`, a.besideCreates.create.n, a.besideCreates.create.p50, a.besideCreates.create.p99, a.besideCreates.create.max, "-"],
              ]
            : []),
          ["GetDeployment", `paced, 1 per ${a.intervalMs / 2} ms each`, a.get.n, a.get.p50, a.get.p99, a.get.max, "-"],
          ["CreateDeployment", "burst (back to back)", a.burst.create.n, a.burst.create.p50, a.burst.create.p99, a.burst.create.max, a.burst.createsPerS],
          ["GetDeployment", "burst (back to back)", a.burst.get.n, a.burst.get.p50, a.burst.get.p99, a.burst.get.max, a.burst.getsPerS],
        ],
      ),
    );
    parts.push(`CreateDeployment makes ${CREATE_ROUND_TRIPS} sequential round trips to nats-server before it answers (counted in services/coordinator/src/createDeployment.ts; goal ${ROUND_TRIPS_GOAL})`);
  }
  if (r.security) parts.push(renderSecurity(r.security));
  if (r.ansible) {
    const a = r.ansible;
    parts.push(
      "skipped" in a
        ? `peer: skipped: ${a.skipped}`
        : `peer (${a.version}): ` + a.runs.map((x) => `${x.hosts} hosts: Ansible ${x.ok ? fmtMs(x.ms) : `failed (${x.error?.split("\n")[0]})`}, ours ${fmtMs(r.shapes.find((s) => s.shape === "fanout" && s.n === x.hosts)?.oursMs)}`).join("; "),
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
  parts.push(table(["goal", "met", "figure"], r.goals.map((g) => [g.goal, g.met === null ? "-" : g.met ? "met" : "NOT MET", g.figure])));
  parts.push(`total duration: ${r.durationS} s (${round1(r.durationS / 60)} min)`);
  return parts.join("\n\n");
}

/** The security part: each figure off and on, and the difference (on − off, and on / off). */
export function renderSecurity(s: SecurityResult): string {
  const lines: string[] = [];
  for (const [mode, m] of [["off", s.off], ["on", s.on]] as const) if ("error" in m) lines.push(`security ${mode}: failed: ${m.error.split("\n")[0]}`);
  if ("error" in s.off || "error" in s.on) return lines.join("\n");
  const off: SecurityModeResult = s.off;
  const on: SecurityModeResult = s.on;
  const row = (what: string, a: number | undefined, b: number | undefined): (string | number)[] => [
    what,
    a === undefined ? "-" : round1(a),
    b === undefined ? "-" : round1(b),
    a === undefined || b === undefined ? "-" : `${b - a >= 0 ? "+" : ""}${round1(b - a)}`,
    a === undefined || b === undefined || a === 0 ? "-" : `${(b / a).toFixed(2)}×`,
  ];
  const api = on.api;
  lines.push(
    table(
      ["security: off vs on, same run (ms)", "off", "on", "on − off", "on / off"],
      [
        row(`fan-out ${s.n}, cold`, off.fanout.ms, on.fanout.ms),
        row(`fan-out ${s.n}, warm`, off.fanout.warmMs, on.fanout.warmMs),
        row(`CreateDeployment p50 (${api.clients} clients, paced 1 per ${api.intervalMs} ms each)`, off.api.create.p50, on.api.create.p50),
        row("CreateDeployment p99", off.api.create.p99, on.api.create.p99),
        row(`GetDeployment p50 (paced 1 per ${api.intervalMs / 2} ms each)`, off.api.get.p50, on.api.get.p50),
        row("GetDeployment p99", off.api.get.p99, on.api.get.p99),
        row(`agents' start (${s.n}, not timed above)`, off.fanout.agentStartMs, on.fanout.agentStartMs),
      ],
    ),
  );
  const cpu = (m: SecurityModeResult, k: string): string => String(m.fanout.cpuS?.[k] ?? "-");
  lines.push(
    `security: fan-out states off ${stateOf(off.fanout.state)} / ${stateOf(off.fanout.warmState)}, on ${stateOf(on.fanout.state)} / ${stateOf(on.fanout.warmState)}; ` +
      `cold fan-out CPU s coordinator ${cpu(off, "coordinator")} → ${cpu(on, "coordinator")}, nats-server ${cpu(off, "natsServer")} → ${cpu(on, "natsServer")}; ` +
      `JetStream messages per target ${off.fanout.work?.inPerTarget ?? "-"} → ${on.fanout.work?.inPerTarget ?? "-"}`,
  );
  const stages = new Map<string, [number | undefined, number | undefined]>();
  for (const t of off.fanout.stages ?? []) stages.set(t.what, [t.p50Ms, undefined]);
  for (const t of on.fanout.stages ?? []) stages.set(t.what, [stages.get(t.what)?.[0], t.p50Ms]);
  if (stages.size > 0) lines.push(table([`security: fan-out ${s.n}, cold, per target p50 (ms)`, "off", "on", "on − off", "on / off"], [...stages].map(([what, [a, b]]) => row(what, a, b))));
  return lines.join("\n");
}
