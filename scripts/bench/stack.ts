// The product's processes for a bench: the coordinator as a child process
// (dist/services/coordinator/src/main.js, so its RSS and CPU profile are its
// own) and agents in agent-host child processes (scripts/bench/agentHost.ts).
import { join } from "node:path";
import { freePort } from "../lib/natsServer.js";
import { AGENT_MAIN, COORDINATOR_MAIN, packageRoot, ROOT } from "../lib/paths.js";
import { BenchClient, type BenchClientOptions } from "./client.js";
import { NodeProc, sleep } from "./procs.js";
import type { AgentHostConfig } from "./hostConfig.js";

export { agentId, type AgentHostConfig, type SecureAgents } from "./hostConfig.js";

/**
 * Commands each agent-host process's agents take past their journals at
 * once in the scale case (StartAgentOptions.admit); the rest wait their
 * turn with in-progress acks. 2,500 agents share each host process, and
 * the processes share two cores with the server: all at once, every apply
 * lasted about as long as the rollout (started → result p50 80-107 s), with
 * its stored heartbeats and in-progress acks, and in one run 116 of 10,000
 * targets failed as their start lease ran out. A VM applies its one command
 * at once on its own CPU. Measured on a 2-core AMD EPYC VM, the case alone:
 * 32 at a time, started → result p50 0.8 s, 12.9 JetStream messages per
 * target instead of 15.8, cold 110 s instead of 136 s.
 */
export const SCALE_ADMIT_AT_ONCE = 32;


export { AGENT_MAIN, COORDINATOR_MAIN, packageRoot, ROOT };
export const AGENT_HOST_MAIN = join(ROOT, "dist/scripts/bench/agentHost.js");

/**
 * Bench agents store a heartbeat every 30 s while they apply and send an
 * idle one every 60 s, instead of 5 s for both, to cut idle load with
 * thousands of agents (docs/production.md, sizing heartbeats); the
 * coordinator's agentLiveMs is raised to match. At 10,000 idle agents on a
 * 2-core AMD EPYC VM: idle every 30 s, nats-server 13.1-13.3 % of a core and
 * the coordinator 4.3-4.9 %; every 60 s, 11.1-11.8 % and 3.1-3.7 %.
 */
export const BENCH_HEARTBEAT_MS = 30_000;
export const BENCH_IDLE_HEARTBEAT_MS = 60_000;
export const BENCH_AGENT_LIVE_MS = 120_000;

export interface CoordinatorProc {
  proc: NodeProc;
  address: string;
  client: BenchClient;
  stop(): Promise<void>;
}

export async function startCoordinatorProc(
  natsUrl: string,
  opts: {
    cpuProfDir?: string;
    heapMb?: number;
    agentLiveMs?: number;
    /** Production mode (security.ts): the coordinator's generated environment (TLS, tokens, nkey, signing, bindings). */
    secure?: { env: Record<string, string>; client: BenchClientOptions };
  } = {},
): Promise<CoordinatorProc> {
  const port = await freePort();
  const nodeArgs: string[] = [];
  if (opts.heapMb) nodeArgs.push(`--max-old-space-size=${opts.heapMb}`);
  if (opts.cpuProfDir) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`);
  const proc = new NodeProc("coordinator", COORDINATOR_MAIN, {
    nodeArgs,
    env: {
      NATS_URL: natsUrl,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_GRPC_LISTEN: `127.0.0.1:${port}`,
      DEPLOY_AGENT_LIVE_MS: String(opts.agentLiveMs ?? BENCH_AGENT_LIVE_MS),
      DEPLOY_NATS_API_TIMEOUT_MS: "30000",
      LOG_LEVEL: "info",
      ...(opts.secure ? { ...opts.secure.env, DEPLOY_DEV_MODE: "false" } : {}),
    },
  });
  await proc.waitForLog("coordinator running", 30_000);
  const address = `127.0.0.1:${port}`;
  const client = new BenchClient(address, opts.secure?.client);
  return {
    proc,
    address,
    client,
    async stop() {
      client.close();
      // A graceful stop, so a --cpu-prof profile is written.
      await proc.stop(15_000);
    },
  };
}

export interface AgentHosts {
  procs: NodeProc[];
  /** The agents' id prefix (agentId(prefix, i)). */
  prefix: string;
  startMs: number;
  stop(): Promise<void>;
}

/** Starts `count` agents spread over `processes` agent hosts; resolves when all run. */
export async function startAgentHosts(base: Omit<AgentHostConfig, "from" | "count">, count: number, processes = 1, heapMb?: number, nodeArgs: string[] = []): Promise<AgentHosts> {
  const per = Math.ceil(count / processes);
  const procs: NodeProc[] = [];
  const t0 = Date.now();
  for (let p = 0; p * per < count; p++) {
    const cfg: AgentHostConfig = { ...base, from: p * per, count: Math.min(per, count - p * per) };
    procs.push(
      new NodeProc(`agent-host-${p}`, AGENT_HOST_MAIN, {
        ipc: true,
        nodeArgs: [...(heapMb ? [`--max-old-space-size=${heapMb}`] : []), ...nodeArgs],
        env: { BENCH_AGENT_HOST: JSON.stringify(cfg), UV_THREADPOOL_SIZE: "16" },
      }),
    );
  }
  const isReady = (m: unknown): m is { ready: number } => typeof m === "object" && m !== null && "ready" in m;
  try {
    await Promise.all(procs.map((p) => p.waitForMessage(isReady, 15 * 60_000)));
  } catch (err) {
    await Promise.all(procs.map((p) => p.kill()));
    throw err;
  }
  return {
    procs,
    prefix: base.prefix,
    startMs: Date.now() - t0,
    async stop() {
      await Promise.all(procs.map((p) => p.stop(5000)));
    },
  };
}

/** Waits until the coordinator's registry shows `n` live agents for the app and environment. */
export async function waitForLiveAgents(client: BenchClient, app: string, environment: string, n: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.agents({ app, environment }).catch(() => ({ agents: [] }));
    const live = r.agents.filter((a) => a.live).length;
    if (live >= n) return;
    if (Date.now() > until) throw new Error(`only ${live} of ${n} agents live for ${app}/${environment} after ${timeoutMs} ms`);
    await sleep(200);
  }
}
