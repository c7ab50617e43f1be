// A child process holding many real agents (startAgent: the real consumer,
// journal, claim check and report code), so thousands fit on one machine.
// Its config comes as JSON in BENCH_AGENT_HOST; it tells its parent over IPC
// when every agent is running ({ready}) or that one failed ({error}).
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadAgentConfig, startAgent, type Agent, type AgentConfig } from "../../services/agent/src/index.js";
import { createLogger, turns } from "../../services/shared/src/index.js";
import { agentId, type AgentHostConfig } from "./hostConfig.js";

function configFor(h: AgentHostConfig, i: number): AgentConfig {
  const id = agentId(h.prefix, i);
  const apps = h.appsByIndex?.[i] ?? h.apps;
  const stateDir = join(h.stateRoot, id);
  // Through the agent's own config loader, so keys added later get their defaults.
  const cfg = loadAgentConfig([], {
    devMode: true,
    id,
    environment: h.environment,
    apps: Object.fromEntries(apps.map((a) => [a, { deploy: h.deployExecutable }])),
    labels: { bench: "1" },
    nats: { url: h.natsUrl, apiTimeoutMs: 30_000 },
    stateDir,
    heartbeatIntervalMs: h.heartbeatIntervalMs,
    ...(h.idleHeartbeatIntervalMs ? { idleHeartbeatIntervalMs: h.idleHeartbeatIntervalMs } : {}),
    shutdownGraceMs: 1000,
    logLevel: h.logLevel,
    // Production mode: its own nkey, TLS to NATS, signed commands only.
    ...(h.secure
      ? {
          devMode: false,
          nats: { url: h.natsUrl, apiTimeoutMs: 30_000, nkeySeedFile: join(h.secure.credsDir, `agent-${id}.nk`), tlsCaFile: h.secure.caFile },
          trustedSigners: [h.secure.trustedSigner],
        }
      : {}),
  });
  // Releases (when the agent has them) go under the agent's temp dir too.
  if ("root" in cfg) (cfg as unknown as Record<string, unknown>).root = join(stateDir, "root");
  return cfg;
}

async function main(): Promise<void> {
  const h = JSON.parse(process.env.BENCH_AGENT_HOST ?? "") as AgentHostConfig;
  const log = createLogger("agent", h.logLevel);
  await mkdir(h.stateRoot, { recursive: true });
  const agents: Agent[] = [];
  const options = h.admitAtOnce === undefined ? {} : { admit: turns(h.admitAtOnce) };
  const t0 = performance.now();
  let next = h.from;
  const end = h.from + h.count;
  await Promise.all(
    Array.from({ length: Math.min(h.startConcurrency, h.count) }, async () => {
      while (next < end) {
        const i = next++;
        agents.push(await startAgent(configFor(h, i), log, options));
      }
    }),
  );
  process.send?.({ ready: agents.length, startMs: Math.round(performance.now() - t0) });
  // {close: id}: that agent stops (its heartbeats with it), as a VM that goes
  // away; the parent times how long the coordinator takes to see it not live.
  process.on("message", (m: unknown) => {
    const id = typeof m === "object" && m !== null && "close" in m ? String(m.close) : undefined;
    const agent = id === undefined ? undefined : agents.find((a) => a.id === id);
    if (!agent) return;
    void agent.close(0).then(() => process.send?.({ closed: id }));
  });
  // Stopping: the bench does not care about a graceful drain of idle agents.
  const exit = (): void => process.exit(0);
  process.on("SIGTERM", exit);
  process.on("SIGINT", exit);
  process.on("disconnect", exit);
}

main().catch((err: unknown) => {
  process.send?.({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.stderr.write(`agent host: ${String(err)}\n`);
  process.exit(1);
});
