// The idle fleet (issue 17, goal 4): N connected agents doing nothing. The
// CPU nats-server and the coordinator use over a window, as % of one core
// (from /proc/<pid>/stat), the JetStream messages the fleet sends meanwhile,
// and liveness: every agent still live at the end, and how long the
// coordinator takes to see an agent that stopped as not live.
import { performance } from "node:perf_hooks";
import type { BenchClient } from "./client.js";
import { readCounters, type ServerCounters } from "./monitor.js";
import { cpuSecondsOf, sleep } from "./procs.js";
import type { NodeProc } from "./procs.js";

export interface IdleResult {
  n: number;
  seconds: number;
  /** % of one core over the window, per process (agentHosts: all of them). */
  cpuPct: Record<string, number>;
  /** nats-server's % of one core in each SAMPLE_MS of the window, in order: a transient (a GC, the fleet's start settling) shows here, not in the average. */
  natsServerSamplesPct?: number[];
  /** Messages clients sent the server per second over the window, and JetStream API calls per second. */
  inMsgsPerS?: number;
  apiPerS?: number;
  /** Agents the coordinator showed live at the end of the window. */
  liveAtEnd: number;
  /** The agents' idle heartbeat. */
  heartbeatMs: number;
  agentLiveMs: number;
}

export interface LivenessResult {
  agentId: string;
  /** The measurement itself failed (e.g. ListAgents did not answer). */
  error?: string;
  /** From the agent's stop until ListAgents showed it not live; undefined when not within limitMs. */
  detectedMs?: number;
  limitMs: number;
  /** How often ListAgents was asked: the measurement's resolution (a detection up to limitMs + pollMs is within the limit). */
  pollMs?: number;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
/** The idle window's sampling period for nats-server's CPU. */
const SAMPLE_MS = 10_000;

export async function measureIdle(o: {
  client: BenchClient;
  app: string;
  environment: string;
  n: number;
  ms: number;
  pids: Record<string, number>;
  agentHostPids: number[];
  monitorUrl?: string;
  heartbeatMs: number;
  agentLiveMs: number;
}): Promise<IdleResult> {
  const cpu = (): Record<string, number> => ({
    ...Object.fromEntries(Object.entries(o.pids).map(([k, pid]) => [k, cpuSecondsOf(pid) ?? NaN])),
    agentHosts: o.agentHostPids.reduce((a, pid) => a + (cpuSecondsOf(pid) ?? 0), 0),
  });
  const c0: ServerCounters | undefined = o.monitorUrl ? await readCounters(o.monitorUrl) : undefined;
  const cpu0 = cpu();
  const t0 = performance.now();
  const samples: number[] = [];
  const nats = o.pids["natsServer"];
  for (let at = t0, last = nats !== undefined ? cpuSecondsOf(nats) : undefined; performance.now() - t0 < o.ms; ) {
    await sleep(Math.min(SAMPLE_MS, o.ms - (performance.now() - t0)));
    const now = performance.now();
    const cur = nats !== undefined ? cpuSecondsOf(nats) : undefined;
    // A tail shorter than a second is left out: its figure would be noise.
    if (last !== undefined && cur !== undefined && now - at >= 1000) samples.push(r1(((cur - last) / ((now - at) / 1000)) * 100));
    [at, last] = [now, cur];
  }
  const cpu1 = cpu();
  const s = (performance.now() - t0) / 1000;
  const c1 = o.monitorUrl ? await readCounters(o.monitorUrl) : undefined;
  const r = await o.client.agents({ app: o.app, environment: o.environment });
  return {
    n: o.n,
    seconds: r1(s),
    cpuPct: Object.fromEntries(Object.keys(cpu0).map((k) => [k, r1(((cpu1[k]! - cpu0[k]!) / s) * 100)])),
    ...(samples.length > 0 ? { natsServerSamplesPct: samples } : {}),
    ...(c0 && c1 ? { inMsgsPerS: r1((c1.inMsgs - c0.inMsgs) / s), apiPerS: r1((c1.apiTotal - c0.apiTotal) / s) } : {}),
    liveAtEnd: r.agents.filter((a) => a.live).length,
    heartbeatMs: o.heartbeatMs,
    agentLiveMs: o.agentLiveMs,
  };
}

/** Stops one agent in its host and polls ListAgents until the coordinator shows it not live (up to limitMs + 30 s). */
export async function measureLiveness(o: { client: BenchClient; host: NodeProc; agentId: string; app: string; environment: string; limitMs: number; pollMs: number }): Promise<LivenessResult> {
  // Timed from the stop request: a loaded agent host may take many seconds
  // to finish the close (drain), and its heartbeats stop on the way.
  o.host.child.send({ close: o.agentId });
  const t0 = performance.now();
  while (performance.now() - t0 < o.limitMs + 30_000) {
    await sleep(o.pollMs);
    const r = await o.client.agents({ app: o.app, environment: o.environment }).catch(() => undefined);
    const a = r?.agents.find((x) => x.id === o.agentId);
    if (a && !a.live) return { agentId: o.agentId, detectedMs: Math.round(performance.now() - t0), limitMs: o.limitMs, pollMs: o.pollMs };
  }
  return { agentId: o.agentId, limitMs: o.limitMs, pollMs: o.pollMs };
}
