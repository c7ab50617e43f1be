// ListDeployments: newest first, filtered, paged; shared by gRPC and the dashboard's HTTP API.
import { ACTIVE_FILTER, loadDeployment, type DeploymentRecord, type JsContext } from "../../../shared/src/index.js";
import { parseLock } from "../createDeployment.js";
import type { ListInput } from "../requests.js";

const ACTIVE_PREFIX = ACTIVE_FILTER.slice(0, -1);

export async function listDeployments(
  ctx: Pick<JsContext, "js" | "jsm" | "deployments">,
  q: ListInput,
): Promise<{ deployments: DeploymentRecord[]; nextPageToken: string }> {
  const found = new Set<string>();
  const locks: string[] = [];
  for await (const k of await ctx.deployments.keys()) {
    if (k.startsWith("d-")) found.add(k);
    else if (k.startsWith(ACTIVE_PREFIX)) locks.push(k);
  }
  // A deployment just created has no projection until its first reconcile
  // writes one (CreateDeployment answers without waiting for it): its lock
  // names it. One whose creation is under way is not readable yet and is
  // skipped below.
  for (const k of locks) {
    const lock = parseLock(await ctx.deployments.get(k));
    if (lock) found.add(lock.deploymentId);
  }
  // Ids are time-ordered: newest first is a reverse sort.
  const ids = [...found].filter((id) => !q.pageToken || id < q.pageToken);
  ids.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const page: DeploymentRecord[] = [];
  let next = "";
  for (const id of ids) {
    const loaded = await loadDeployment(ctx, id);
    if (!loaded) continue;
    const r = loaded.record;
    if ((q.app && r.spec.app !== q.app) || (q.environment && r.spec.environment !== q.environment) || (q.state && r.state !== q.state)) continue;
    if (page.length === q.pageSize) {
      next = page.at(-1)!.spec.id;
      break;
    }
    page.push(r);
  }
  return { deployments: page, nextPageToken: next };
}
