// ListDeployments: newest first, filtered, paged; shared by gRPC and the dashboard's HTTP API.
import { loadDeployment, type DeploymentRecord, type JsContext } from "../../../shared/src/index.js";
import type { ListInput } from "../requests.js";

export async function listDeployments(
  ctx: Pick<JsContext, "js" | "jsm" | "deployments">,
  q: ListInput,
): Promise<{ deployments: DeploymentRecord[]; nextPageToken: string }> {
  const ids: string[] = [];
  for await (const k of await ctx.deployments.keys()) {
    if (k.startsWith("d-") && (!q.pageToken || k < q.pageToken)) ids.push(k);
  }
  // Ids are time-ordered: newest first is a reverse sort.
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
