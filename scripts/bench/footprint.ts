// An idle agent's RSS as its own process: dist/services/agent/src/main.js,
// started, registered, then left idle for a few heartbeats.
import { join } from "node:path";
import { AGENT_MAIN } from "./stack.js";
import { NodeProc, memOf, sleep } from "./procs.js";

export interface FootprintResult {
  idleAgentRssMb: number;
  idleAgentPeakRssMb: number;
  idleSeconds: number;
}

export async function runFootprint(o: { natsUrl: string; stateRoot: string; idleMs: number }): Promise<FootprintResult> {
  const proc = new NodeProc("idle-agent", AGENT_MAIN, {
    env: {
      NATS_URL: o.natsUrl,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_AGENT_ID: "idle-footprint",
      DEPLOY_ENVIRONMENT: "footprint",
      DEPLOY_AGENT_APPS: JSON.stringify({ idle: { deploy: "/bin/true" } }),
      DEPLOY_AGENT_STATE_DIR: join(o.stateRoot, "idle-footprint"),
      // The default heartbeat (5 s): this is the agent as shipped.
      LOG_LEVEL: "info",
    },
  });
  try {
    await proc.waitForLog("agent running", 30_000);
    await sleep(o.idleMs);
    const m = memOf(proc.pid);
    if (!m) throw new Error("idle agent exited");
    return { idleAgentRssMb: m.rssMb, idleAgentPeakRssMb: m.peakRssMb, idleSeconds: o.idleMs / 1000 };
  } finally {
    await proc.stop(5000);
  }
}
