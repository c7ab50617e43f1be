// ListDeployments: newest first, filtered, paged; shared by gRPC and the
// dashboard's HTTP API. It reads the list index (deploymentIndex.ts) of the
// app and environment asked for, keys and states in one batched direct get,
// and loads only the deployments it may return; before the index it loaded
// every deployment until a page was full.
import {
  ACTIVE_FILTER,
  DEPLOYMENTS_BUCKET,
  indexFilter,
  isTerminalDeployment,
  kvLastValues,
  loadDeployment,
  type DeploymentRecord,
  type JsContext,
} from "../../../shared/src/index.js";
import { acknowledgedCreation, type ActiveLock } from "../createDeployment.js";
import type { ListInput } from "../requests.js";
import { parseIndexValue, type IndexEntry } from "./deploymentIndex.js";

/**
 * With an agent: how many deployments one call loads at most before it
 * answers a short page with a next_page_token (an agent that took part in
 * few of the deployments searched).
 */
export const AGENT_SCAN_LIMIT = 1000;

/** What ListDeployments needs to know of an agent: its environment and apps, when it is registered. */
export interface AgentLookup {
  get(id: string): { record: { environment: string; apps: string[] } } | undefined;
}

export async function listDeployments(
  ctx: Pick<JsContext, "js" | "jsm" | "deployments">,
  q: ListInput,
  agents?: AgentLookup,
  scanLimit = AGENT_SCAN_LIMIT,
): Promise<{ deployments: DeploymentRecord[]; nextPageToken: string }> {
  // An agent's history: a registered agent is deployed to in its own
  // environment, for its own apps, so only those pairs' entries are
  // searched (a VM moved to another environment shows the deployments of
  // the one it is in now); an unknown one (deregistered), every pair.
  const agent = q.agentId ? agents?.get(q.agentId)?.record : undefined;
  const inScope = (app: string | undefined, env: string | undefined): boolean =>
    !(q.app && app !== q.app) && !(q.environment && env !== q.environment) && !(agent && (env !== agent.environment || !agent.apps.includes(app ?? "")));
  const filters = agent ? (q.app ? [q.app] : agent.apps).map((app) => indexFilter(app, q.environment ?? agent.environment)) : [indexFilter(q.app, q.environment)];
  // The pairs' index entries, and the locks: a deployment created moments
  // ago is not indexed yet; its lock names it.
  const [indexed, locks] = await Promise.all([
    Promise.all(filters.map((f) => kvLastValues(ctx.jsm, ctx.deployments, DEPLOYMENTS_BUCKET, f))),
    kvLastValues(ctx.jsm, ctx.deployments, DEPLOYMENTS_BUCKET, ACTIVE_FILTER),
  ]);
  const candidates = new Map<string, IndexEntry | undefined>();
  for (const { key, value } of indexed.flat()) {
    const [, app, env] = key.split(".");
    if (inScope(app, env)) candidates.set(key.slice(key.lastIndexOf(".") + 1), parseIndexValue(value));
  }
  /** The locks of the candidates found only through them: one answered before its created event was stored is stored when loaded. */
  const lockOf = new Map<string, ActiveLock>();
  for (const { key, value } of locks) {
    const [, app, env] = key.split(".");
    if (!inScope(app, env)) continue;
    try {
      const lock = JSON.parse(new TextDecoder().decode(value)) as Partial<ActiveLock> | null;
      const id = lock?.deploymentId;
      if (typeof id === "string" && !candidates.has(id)) {
        candidates.set(id, undefined);
        if (typeof lock?.requestKey === "string") lockOf.set(id, { deploymentId: id, requestKey: lock.requestKey });
      }
    } catch {
      // not a lock of ours
    }
  }
  // A lagging entry may name an earlier state than the deployment's: only a
  // terminal one (final) rules a deployment out without loading it.
  const mayMatch = (e: IndexEntry | undefined): boolean => !q.state || !e || !isTerminalDeployment(e.state) || e.state === q.state;
  // Ids are time-ordered: newest first is a reverse sort.
  const ids = [...candidates.keys()]
    .filter((id) => (!q.pageToken || id < q.pageToken) && mayMatch(candidates.get(id)))
    .sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const page: DeploymentRecord[] = [];
  let next = "";
  // Loaded a page's worth at a time, together; every one is checked against
  // the filter itself (the index may lag).
  const batch = q.pageSize + 1;
  let scanned = 0;
  for (let i = 0; i < ids.length && !next; i += batch) {
    if (q.agentId && scanned >= scanLimit) {
      // Enough looked at for one answer: the client pages on from the last.
      next = ids[i - 1]!;
      break;
    }
    const load = async (id: string): Promise<{ record: DeploymentRecord } | undefined> => {
      const lock = lockOf.get(id);
      return (await loadDeployment(ctx, id)) ?? (lock && (await acknowledgedCreation(ctx, lock)));
    };
    const loaded = await Promise.all(ids.slice(i, i + batch).map((id) => load(id).catch(() => undefined)));
    scanned += loaded.length;
    for (const l of loaded) {
      if (!l) continue;
      const r = l.record;
      if ((q.app && r.spec.app !== q.app) || (q.environment && r.spec.environment !== q.environment) || (q.state && r.state !== q.state)) continue;
      if (q.agentId && r.targets[q.agentId] === undefined) continue;
      if (page.length === q.pageSize) {
        next = page.at(-1)!.spec.id;
        break;
      }
      page.push(r);
    }
  }
  return { deployments: page, nextPageToken: next };
}
