// ListAgents (gRPC) and GET /api/agents (the dashboard): every registered
// agent of the filter, live or not, with its releases against the desired
// ones. Liveness is this coordinator's view: cut off from NATS it hears no
// heartbeat, and showed every agent offline once agentLiveMs had passed,
// so it answers UNAVAILABLE naming that instead; in the 1.5 s after a
// reconnect it waits for the agents' answers (Registry.hearing).
import type { AgentInput } from "../../../shared/src/proto.js";
import { toAgentMessage } from "../grpc/convert.js";
import { toAgentReleases } from "../grpc/convertRelease.js";
import type { ReleaseBook } from "../releases/releaseBook.js";
import type { Registry } from "../registry.js";

export async function listAgents(registry: Registry, releases: ReleaseBook, filter: { app?: string; environment?: string }): Promise<AgentInput[]> {
  await registry.hearing(0);
  const now = registry.clock.now();
  const desiredOf = (app: string, env: string) => releases.get(app, env);
  return registry.list(filter).map((a) => {
    const live = registry.isLive(a, now);
    return toAgentMessage(a, live, toAgentReleases(a.record, live, desiredOf));
  });
}
