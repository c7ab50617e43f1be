// API latency: CreateDeployment and GetDeployment, p50/p99, with C
// concurrent clients, each on its own gRPC channel. Creates need distinct
// (app, environment) pairs (one active deployment per pair), so client k's
// j-th create deploys app api-<run>-k-j, served by agent k; each create
// starts a real one-target rollout in the background, as in production.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { BenchClient } from "./client.js";
import { ENVIRONMENT } from "./ours.js";
import { BENCH_HEARTBEAT_MS, startAgentHosts, waitForLiveAgents } from "./stack.js";
import { summarize } from "./stats.js";

export interface ApiResult {
  clients: number;
  createsPerClient: number;
  create: ReturnType<typeof summarize>;
  get: ReturnType<typeof summarize>;
}

export async function runApi(o: { natsUrl: string; address: string; stateRoot: string; clients: number; perClient: number }): Promise<ApiResult> {
  const run = randomUUID().slice(0, 4);
  const app = (k: number, j: number): string => `api-${run}-${k}-${j}`;
  const appsByIndex: Record<number, string[]> = {};
  for (let k = 0; k < o.clients; k++) appsByIndex[k] = Array.from({ length: o.perClient }, (_, j) => app(k, j));
  const hosts = await startAgentHosts(
    {
      natsUrl: o.natsUrl,
      prefix: `api-${run}-`,
      environment: ENVIRONMENT,
      apps: [],
      appsByIndex,
      stateRoot: join(o.stateRoot, `api-${run}`),
      heartbeatIntervalMs: BENCH_HEARTBEAT_MS,
      startConcurrency: 25,
      deployExecutable: "/bin/true",
      logLevel: "warn",
    },
    o.clients,
  );
  const clients = Array.from({ length: o.clients }, () => new BenchClient(o.address));
  try {
    await waitForLiveAgents(clients[0]!, app(o.clients - 1, 0), ENVIRONMENT, 1, 60_000);
    // Warm each channel (connection setup is not the API's latency).
    await Promise.all(clients.map((c) => c.agents({ app: "none" })));
    const creates: number[] = [];
    const ids: string[] = [];
    await Promise.all(
      clients.map(async (c, k) => {
        for (let j = 0; j < o.perClient; j++) {
          const t0 = performance.now();
          const d = await c.create({
            requestId: `api-${run}-${k}-${j}`,
            app: app(k, j),
            environment: ENVIRONMENT,
            changeset: { version: "v1" },
            strategy: { maxConcurrency: 1 },
            requestedBy: "bench",
          });
          creates.push(performance.now() - t0);
          ids.push(d.id!);
        }
      }),
    );
    const gets: number[] = [];
    await Promise.all(
      clients.map(async (c, k) => {
        for (let j = 0; j < o.perClient * 2; j++) {
          const id = ids[(k * 7 + j * 13) % ids.length]!;
          const t0 = performance.now();
          await c.get(id);
          gets.push(performance.now() - t0);
        }
      }),
    );
    return { clients: o.clients, createsPerClient: o.perClient, create: summarize(creates), get: summarize(gets) };
  } finally {
    for (const c of clients) c.close();
    await hosts.stop();
  }
}
