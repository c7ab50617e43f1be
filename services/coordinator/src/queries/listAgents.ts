// ListAgents (gRPC) and GET /api/agents (the dashboard): the registered
// agents of the filter, live or not, a page at a time, with their releases
// against the desired ones and their cordon. Liveness is this coordinator's view: cut off from
// NATS it hears no heartbeat, and showed every agent offline once
// agentLiveMs had passed, so it answers UNAVAILABLE naming that instead; in
// the 1.5 s after a reconnect it waits for the agents' answers
// (Registry.hearing). CordonAgent and UncordonAgent answer with the agent
// as ListAgents shows it.
import {
  AGENT_EXPIRY,
  COMMANDS_STREAM,
  NotFoundError,
  PreconditionError,
  agentConsumerName,
  errorMessage,
  matchesSelector,
  type Identity,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { AgentInput } from "../../../shared/src/proto.js";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { Cordons } from "../cordons.js";
import { toAgentMessage } from "../grpc/convert.js";
import { toAgentReleases } from "../grpc/convertRelease.js";
import type { ReleaseBook } from "../releases/releaseBook.js";
import type { AgentView, Registry } from "../registry.js";
import type { ListAgentsInput } from "../requests.js";

function agentMessage(registry: Registry, releases: ReleaseBook, a: AgentView, now: number): AgentInput {
  const live = registry.isLive(a, now);
  return toAgentMessage(a, live, toAgentReleases(a.record, live, (app, env) => releases.get(app, env)), registry.cordonOf(a.record.id));
}

/**
 * What a page of ListAgents may hold, estimated as JSON (longer than the
 * protobuf the client receives): 10,000 agents serving two apps from
 * bundles, with a few labels, are ~9 MB, over the 4 MiB a gRPC client takes
 * by default (grpc-js, grpcurl), and `deployctl agents` failed on such a
 * fleet.
 */
const PAGE_BYTES = 2 * 1024 * 1024;

/**
 * ListAgents: the agents matching the filter, the selector and the status,
 * in id order, one page after the agent id `pageToken`. The token is an id,
 * not a position: an agent registered or forgotten between two pages moves
 * no other agent to another page.
 */
export async function listAgentsPage(registry: Registry, releases: ReleaseBook, q: ListAgentsInput): Promise<{ agents: AgentInput[]; nextPageToken: string; total: number; live: number }> {
  await registry.hearing(0);
  const now = registry.clock.now();
  const matching: AgentInput[] = [];
  let live = 0;
  for (const a of registry.list(q.filter)) {
    if (q.selector && !matchesSelector(q.selector, a.record.labels)) continue;
    const m = agentMessage(registry, releases, a, now);
    if (q.status && !(m.releases ?? []).some((r) => r.status === `RELEASE_STATUS_${q.status}` && (!q.filter.app || r.app === q.filter.app))) continue;
    matching.push(m);
    if (m.live) live++;
  }
  // Ids sort the same here as in registry.list (localeCompare) for the ids
  // agents may have (subject tokens); the page starts after the token.
  const from = q.pageToken === undefined ? 0 : matching.findIndex((m) => (m.id ?? "").localeCompare(q.pageToken!) > 0);
  const rest = from < 0 ? [] : matching.slice(from);
  const page: AgentInput[] = [];
  let bytes = 0;
  for (const m of rest) {
    if (page.length >= q.pageSize) break;
    const size = JSON.stringify(m).length;
    if (page.length > 0 && bytes + size > PAGE_BYTES) break;
    page.push(m);
    bytes += size;
  }
  return { agents: page, nextPageToken: page.length < rest.length ? (page.at(-1)?.id ?? "") : "", total: matching.length, live };
}

/**
 * Cordons or uncordons a registered agent (NOT_FOUND otherwise, except to
 * uncordon one still cordoned whose entry is gone). Asking for what is
 * already so writes nothing: a retry leaves no second record.
 */
export async function cordonAgent(
  deps: { registry: Registry; releases: ReleaseBook; cordons: Cordons; log: Logger },
  agentId: string,
  cordon: boolean,
  reason: string,
  by: Identity,
): Promise<AgentInput> {
  const { registry, cordons } = deps;
  const view = registry.get(agentId);
  const current = cordons.get(agentId);
  if (!view && !(current && !cordon)) throw new NotFoundError(`agent ${agentId} is not registered`);
  const same = cordon ? current !== undefined && current.reason === reason && current.by.name === by.name && current.by.via === by.via : current === undefined;
  if (!same) {
    await cordons.set(agentId, cordon, reason, by);
    deps.log.info({ agentId, by: by.name, reason: cordon ? reason : undefined }, cordon ? "agent cordoned: it takes no new deployment" : "agent uncordoned");
  }
  if (!view) return { id: agentId };
  return agentMessage(registry, deps.releases, view, registry.clock.now());
}

/**
 * Forgets an agent that is not live: its registry entry (a KV purge, which
 * every coordinator's watch sees), its command consumer, and its cordon.
 * Answers with the agent as it was. An agent that starts again writes its
 * entry again: it is back, as new.
 */
export async function deregisterAgent(
  deps: { ctx: JsContext; registry: Registry; releases: ReleaseBook; cordons: Cordons; log: Logger },
  agentId: string,
  by: Identity,
): Promise<AgentInput> {
  const { registry } = deps;
  await registry.hearing(0);
  const view = registry.get(agentId);
  if (!view) throw new NotFoundError(`agent ${agentId} is not registered`);
  const now = registry.clock.now();
  if (registry.isLive(view, now)) {
    throw new PreconditionError(
      `agent ${agentId} is live (last heartbeat ${new Date(view.heartbeatAt).toISOString()}): stop it first (it registers again while it runs); to keep it out of deployments while it runs, cordon it`,
    );
  }
  const was = agentMessage(registry, deps.releases, view, now);
  // Compare-and-set on the revision judged not live: an agent that came back
  // and wrote its entry meanwhile is not purged.
  await deps.ctx.agents.purge(agentId, { previousSeq: view.revision }).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
      throw new PreconditionError(`agent ${agentId} wrote its registry entry just now (it may be back): look again with ListAgents`);
    }
    throw err;
  });
  await deps.ctx.jsm.consumers.delete(COMMANDS_STREAM, agentConsumerName(agentId)).catch((err: unknown) => {
    // Gone already (a nats-server restart forgets a consumer kept in memory): nothing to delete.
    if (!/not found/i.test(errorMessage(err))) throw err;
  });
  if (deps.cordons.get(agentId)) await deps.cordons.set(agentId, false, "", by);
  deps.log.info({ agentId, by: by.name, lastHeartbeat: new Date(view.heartbeatAt).toISOString() }, "agent deregistered: no longer listed or deployed to");
  return was;
}

/**
 * Deregisters every agent this coordinator sweeps (the same share as its
 * deployments: one coordinator per agent) that has been silent longer than
 * `forgetAfterMs`, except a cordoned one (an operator keeps it out on
 * purpose; forgetting would lift the cordon). A live agent deregistered by
 * mistake is asked to register again at its next heartbeat.
 */
export async function forgetSilentAgents(
  deps: { ctx: JsContext; registry: Registry; releases: ReleaseBook; cordons: Cordons; log: Logger },
  forgetAfterMs: number,
  owner: (agentId: string) => boolean,
): Promise<string[]> {
  const { registry } = deps;
  const now = registry.clock.now();
  const forgotten: string[] = [];
  for (const view of registry.list()) {
    const id = view.record.id;
    const last = registry.lastHeartbeat(id);
    if (last === undefined || now - last <= forgetAfterMs || deps.cordons.get(id) || !owner(id)) continue;
    try {
      await deregisterAgent(deps, id, AGENT_EXPIRY);
      forgotten.push(id);
    } catch (err) {
      deps.log.warn({ agentId: id, err: errorMessage(err) }, "could not deregister an agent silent longer than agents.forgetAfterMs; trying again later");
    }
  }
  return forgotten;
}
