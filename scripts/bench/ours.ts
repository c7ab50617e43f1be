// Ours: the same shapes through the real path. gRPC CreateDeployment →
// coordinator → commands → agents (real startAgent instances, deploy
// executable /bin/true) → events → the deployment seen terminal through
// WatchDeployment.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { BenchClient } from "./client.js";
import type { Shape } from "./floor.js";
import { cpuSecondsOf, sleep } from "./procs.js";
import { summarize } from "./stats.js";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { deploymentEventFilter, EVENTS_STREAM } from "../../services/shared/src/index.js";
import { readCounters, traceSubjects, workOf, type JsWork } from "./monitor.js";
import { readTimeline, type StageRow, type Timeline } from "./timeline.js";
import { upload, writeBundle } from "./bundleFootprint.js";
import { BENCH_HEARTBEAT_MS, BENCH_IDLE_HEARTBEAT_MS, startAgentHosts, waitForLiveAgents, type AgentHosts, type SecureAgents } from "./stack.js";

export const ENVIRONMENT = "bench";
const DEPLOY_EXECUTABLE = "/bin/true";

export interface OursResult {
  deploymentId: string;
  ms: number;
  state: string;
  events: number;
  /** Time to start the agents (not part of ms). */
  agentStartMs: number;
  /** The deployment was not terminal within the time limit: how far it got. */
  timedOut?: boolean;
  counts?: Record<string, number>;
  /** Up to 5 targets of each state but SUCCEEDED: "agent STATE: message" (why a run did not succeed). */
  unsuccessful?: string[];
  /** CPU seconds used during the timed part, per process. */
  cpuS?: Record<string, number>;
  /** The server's JetStream work from the CreateDeployment call to 500 ms after the terminal event (OursOptions.monitorUrl). */
  work?: JsWork;
  /** The deployment's events by type, relative to the CreateDeployment call (server time), and each target's stages. */
  timeline?: Timeline;
  /** A second deployment to the same agents right after (OursOptions.warm): every process has run its code once. */
  warm?: { ms: number; state: string; stages?: StageRow[]; counts?: Record<string, number>; unsuccessful?: string[]; cpuS?: Record<string, number>; work?: JsWork };
  /** GetDeployment of the deployment while it ran (OursOptions.probeGetEveryMs): latency in ms; failed calls counted apart. */
  getDuringRollout?: ReturnType<typeof summarize> & { failed: number };
}

export interface OursOptions {
  natsUrl: string;
  client: BenchClient;
  stateRoot: string;
  n: number;
  shape: Shape;
  /** Agent host processes (agents are spread over them). */
  hostProcesses?: number;
  hostHeapMb?: number;
  /** Commands each host process's agents take past their journals at once (AgentHostConfig.admitAtOnce); unset: all. */
  admitAtOnce?: number;
  /** Called with the agents running and live, before the deployment is created (e.g. to measure the idle fleet). */
  onAgentsReady?: (hosts: AgentHosts, app: string) => void | Promise<void>;
  /** The agents' heartbeat while applying (default BENCH_HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** The agents' idle heartbeat (default BENCH_IDLE_HEARTBEAT_MS). */
  idleHeartbeatMs?: number;
  /** One more agent, serving only probeAppOf(app): no deployment targets it; it can be stopped to time its detection. */
  probeAgent?: boolean;
  /** Called after the deployments, with the agents still running. */
  afterDeployments?: (hosts: AgentHosts, app: string) => Promise<void>;
  /** The server's monitoring endpoint: each deployment's JetStream work is read from it. */
  monitorUrl?: string;
  /** Called every second while the deployment runs (e.g. to sample RSS). */
  onTick?: (elapsedMs: number, events: number) => void;
  timeoutMs?: number;
  /** Processes whose CPU time is reported (name → pid); the agent hosts are added. */
  cpuPids?: Record<string, number>;
  /** Extra node flags of the agent hosts (e.g. --cpu-prof). */
  hostNodeArgs?: string[];
  /** Time a second deployment to the same agents too (OursResult.warm). */
  warm?: boolean;
  /** Call GetDeployment of the deployment while it runs, one call at a time, this long apart (OursResult.getDuringRollout). */
  probeGetEveryMs?: number;
  /** The app and the agents' id prefix, when credentials were made for them beforehand (security.ts); default: random. */
  app?: string;
  agentPrefix?: string;
  /** Agents in production mode (security.ts). */
  secure?: SecureAgents;
  /** The bench's own NATS credentials on a secured server (an admin nkey and the CA), for the timeline. */
  natsAuth?: { nkeySeed: string; tlsCaFile: string };
  /**
   * Each deployment installs a bundle of this many MB (random bytes, so its
   * artifact is that large), uploaded as the app's artifact before it (not
   * timed): every agent downloads, checks and unpacks it and switches its
   * release, instead of running the deploy executable.
   */
  bundleMb?: number;
}

/** The app of the probe agent (OursOptions.probeAgent): it serves only this one. */
export const probeAppOf = (app: string): string => `${app}-probe`;

export async function startShapeAgents(o: OursOptions, app: string, prefix: string): Promise<AgentHosts> {
  return startAgentHosts(
    {
      // The probe agent, index n, in the last host process.
      ...(o.probeAgent ? { appsByIndex: { [o.n]: [probeAppOf(app)] } } : {}),
      natsUrl: o.natsUrl,
      prefix,
      environment: ENVIRONMENT,
      apps: [app],
      stateRoot: join(o.stateRoot, prefix),
      heartbeatIntervalMs: o.heartbeatMs ?? BENCH_HEARTBEAT_MS,
      idleHeartbeatIntervalMs: o.idleHeartbeatMs ?? BENCH_IDLE_HEARTBEAT_MS,
      startConcurrency: 64,
      deployExecutable: DEPLOY_EXECUTABLE,
      logLevel: "warn",
      ...(o.secure ? { secure: o.secure } : {}),
      ...(o.admitAtOnce === undefined ? {} : { admitAtOnce: o.admitAtOnce }),
    },
    o.n + (o.probeAgent ? 1 : 0),
    o.hostProcesses ?? 1,
    o.hostHeapMb,
    o.hostNodeArgs,
  );
}

export async function runOurs(o: OursOptions): Promise<OursResult> {
  const tag = `${o.shape === "fanout" ? "f" : "s"}${o.n}`;
  const app = o.app ?? `app-${tag}-${randomUUID().slice(0, 6)}`;
  const hosts = await startShapeAgents(o, app, o.agentPrefix ?? `${tag}-${randomUUID().slice(0, 4)}-`);
  try {
    await waitForLiveAgents(o.client, app, ENVIRONMENT, o.n, 5 * 60_000);
    await o.onAgentsReady?.(hosts, app);
    const pids: Record<string, number> = { ...o.cpuPids };
    hosts.procs.forEach((p, i) => (pids[`agentHost${hosts.procs.length > 1 ? i : ""}`] = p.pid));
    const first = await deployOnce(o, app, "v1", pids, hosts.startMs, o.onTick, await bundleFor(o, app, "v1"));
    if (!o.warm || first.timedOut || first.state !== "DEPLOYMENT_STATE_SUCCEEDED") {
      await o.afterDeployments?.(hosts, app);
      return first;
    }
    // The same agents again: every process has loaded and run its code once.
    const warm = await deployOnce(o, app, "v2", pids, hosts.startMs, o.onTick, await bundleFor(o, app, "v2"));
    await o.afterDeployments?.(hosts, app);
    return {
      ...first,
      warm: {
        ms: warm.ms,
        state: warm.timedOut ? `NOT TERMINAL (${warm.state})` : warm.state,
        ...(warm.timeline ? { stages: warm.timeline.stages } : {}),
        ...(warm.counts ? { counts: warm.counts } : {}),
        ...(warm.unsuccessful ? { unsuccessful: warm.unsuccessful } : {}),
        ...(warm.cpuS ? { cpuS: warm.cpuS } : {}),
        ...(warm.work ? { work: warm.work } : {}),
      },
    };
  } finally {
    await hosts.stop();
  }
}

/** OursOptions.bundleMb: a new bundle for `version`, uploaded as `app`'s artifact; undefined without it. */
async function bundleFor(o: OursOptions, app: string, version: string): Promise<{ name: string; digest: string } | undefined> {
  if (!o.bundleMb) return undefined;
  const file = join(o.stateRoot, `${app}-${version}.tar.gz`);
  await writeBundle(file, Math.round(o.bundleMb * 1024 * 1024));
  const { digest } = await upload(o.client, file, app);
  return { name: app, digest };
}

/** One deployment of `app` to every agent, timed from the CreateDeployment call to SUCCEEDED seen through WatchDeployment. */
async function deployOnce(
  o: OursOptions,
  app: string,
  version: string,
  pids: Record<string, number>,
  agentStartMs: number,
  onTick?: (elapsedMs: number, events: number) => void,
  artifact?: { name: string; digest: string },
): Promise<OursResult> {
  const timeout = { seconds: 3600, nanos: 0 };
  let events = 0;
  const counters0 = o.monitorUrl ? await readCounters(o.monitorUrl) : undefined;
  const trace = process.env["BENCH_TRACE_SUBJECTS"] === "1" ? await traceSubjects(o.natsUrl) : undefined;
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecondsOf(pid) ?? 0]));
  const wall0 = Date.now();
  const t0 = performance.now();
  const ticker = onTick ? setInterval(() => onTick(performance.now() - t0, events), 1000) : undefined;
  try {
    const created = await o.client.create({
      requestId: `bench-${randomUUID()}`,
      app,
      environment: ENVIRONMENT,
      changeset: { version, ...(artifact ? { artifact } : {}) },
      strategy: {
        maxConcurrency: o.shape === "fanout" ? o.n : 1,
        maxFailures: 0,
        // Generous: the bench measures throughput, not timeouts.
        deliveryTimeout: timeout,
        applyTimeout: timeout,
      },
      requestedBy: "bench",
    });
    const id = created.id!;
    const watched = o.client.watch(id, () => void events++);
    let done = false;
    const gets: number[] = [];
    let getsFailed = 0;
    const every = o.probeGetEveryMs;
    const probing = every
      ? (async () => {
          while (!done) {
            const t = performance.now();
            await o.client.get(id).then(
              () => gets.push(performance.now() - t),
              () => getsFailed++,
            );
            if (!done) await sleep(every);
          }
        })()
      : undefined;
    const limit = o.timeoutMs ?? 30 * 60_000;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      watched.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), limit);
      }),
    ]).finally(() => clearTimeout(timer));
    const ms = performance.now() - t0;
    done = true;
    await probing;
    const cpuS = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round(((cpuSecondsOf(pid) ?? 0) - cpu0[k]!) * 100) / 100]));
    // What the targets' trailing writes (an agent's registry entry with its
    // new release) add: counted after a short settle.
    let work: JsWork | undefined;
    if (counters0 && o.monitorUrl) {
      await sleep(500);
      work = workOf(counters0, await readCounters(o.monitorUrl), o.n);
    }
    // On stderr: the 10,000-agent case runs in a child whose stderr the bench forwards.
    if (trace) console.error(`messages per target by kind (${o.shape} ${o.n}):`, await trace.stop(o.n));
    // A stalled system may not answer: report what is known rather than nothing.
    const d = await o.client.get(id).catch((err: unknown) => ({ state: `unknown (GetDeployment: ${(err as Error).message.split("\n")[0]})`, counts: undefined }));
    // When the coordinator cannot answer (a saturated server), the counts
    // come from the agents' events in the stream instead, so that a failure
    // still says how far the rollout got.
    const counts = d.counts
      ? Object.fromEntries(d.counts.map((c) => [String(c.state), Number(c.count)]))
      : await countsFromEvents(o.natsUrl, id, o.n).catch((err: unknown) => ({ [`no counts (${String(err).slice(0, 200)})`]: 0 }));
    const timeline = await readTimeline(o.natsUrl, id, wall0, o.natsAuth).catch(() => undefined);
    const unsuccessful = await unsuccessfulTargets(o.client, id, counts);
    return {
      deploymentId: id,
      ms,
      state: d.state ?? "?",
      events,
      agentStartMs,
      counts,
      ...(unsuccessful.length > 0 ? { unsuccessful } : {}),
      cpuS,
      ...(work ? { work } : {}),
      ...(timeline ? { timeline } : {}),
      ...(finished ? {} : { timedOut: true }),
      ...(probing ? { getDuringRollout: { ...summarize(gets), failed: getsFailed } } : {}),
    };
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

/** Up to 5 targets of each state in `counts` but SUCCEEDED, with their messages; what GetDeployment could not answer is said so. */
async function unsuccessfulTargets(client: BenchClient, id: string, counts: Record<string, number>): Promise<string[]> {
  const out: string[] = [];
  for (const state of Object.keys(counts)) {
    if (state === "TARGET_STATE_SUCCEEDED" || !state.startsWith("TARGET_STATE_")) continue;
    try {
      const d = await client.targetsIn(id, state);
      for (const t of d.targets ?? []) out.push(`${t.agentId ?? "?"} ${String(t.state ?? state).replace("TARGET_STATE_", "")}: ${t.message ?? ""}`.slice(0, 300));
    } catch (err) {
      out.push(`${state}: GetDeployment failed (${(err as Error).message.split("\n")[0]})`);
    }
  }
  return out;
}

/** Targets by how many events their agent wrote for the deployment (DEPLOY_EVENTS' per-subject counts). */
async function countsFromEvents(natsUrl: string, id: string, n: number): Promise<Record<string, number>> {
  const nc = await connect({ servers: natsUrl, name: "bench-counts" });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 60_000 });
    const si = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: deploymentEventFilter(id) });
    let reported = 0;
    let one = 0;
    for (const [subject, count] of Object.entries(si.state.subjects ?? {})) {
      if (subject.endsWith(".coordinator")) continue;
      if (count >= 2) reported++;
      else one++;
    }
    return {
      "from DEPLOY_EVENTS: agent wrote started and result": reported,
      "from DEPLOY_EVENTS: agent wrote one event (started, declined or refused)": one,
      "from DEPLOY_EVENTS: no event from the agent (PENDING or DISPATCHED)": n - reported - one,
    };
  } finally {
    await nc.close();
  }
}
