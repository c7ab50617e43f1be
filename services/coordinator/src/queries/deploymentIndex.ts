// The list index of deploy_deployments: idx.<app>.<env>.<deployment id> →
// {state, lastSeq}, one small entry per finished deployment, written by the
// reconciler once, when it is terminal, before the pair's lock is given
// back. A deployment that is not terminal holds its pair's lock, which names
// it, and an entry with a state that is not terminal rules nothing out (it
// may lag), so such entries (written by earlier versions, at PENDING and
// RUNNING) told ListDeployments nothing the lock does not: dropping them
// saved a read and a write per deployment. ListDeployments lists the keys of the
// app and environment asked for (a subject filter on the server: none of
// the other pairs' keys are sent), newest first (ids are time-ordered),
// reads the index values of a page's worth of candidates to filter by
// state, and loads only the deployments it returns. Before the index it
// loaded every deployment to fill a page.
//
// The index may lag (a write is made after the state changed in the
// stream): ListDeployments checks every deployment it returns against the
// filter, and a deployment created moments ago (not indexed yet) is found
// through its pair's lock. An entry is never moved backwards: a write with
// an older lastSeq, or over a terminal state, is dropped.
import {
  ConflictError,
  DEPLOYMENTS_BUCKET,
  DEPLOYMENT_STATES,
  kvStreamName,
  encode,
  indexKey,
  isTerminalDeployment,
  loadDeployment,
  parseJson,
  asEnum,
  asInt,
  asObject,
  type DeploymentRecord,
  type DeploymentState,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { KvEntry } from "@nats-io/kv";

export interface IndexEntry {
  state: DeploymentState;
  /** The stream sequence of the deployment's state this entry records. */
  lastSeq: number;
}

/** An index entry's value; undefined when it is not one this version reads. */
export function parseIndexValue(value: Uint8Array): IndexEntry | undefined {
  try {
    const o = asObject(parseJson(value, "index entry"), "index entry");
    return { state: asEnum(o.state, "state", DEPLOYMENT_STATES), lastSeq: asInt(o.lastSeq, "lastSeq", 0, Number.MAX_SAFE_INTEGER) };
  } catch {
    return undefined;
  }
}

const parseIndexEntry = (e: KvEntry | null): IndexEntry | undefined => (e && e.operation === "PUT" ? parseIndexValue(e.value) : undefined);

/**
 * Records `rec`'s terminal state in the index unless it already holds it;
 * compare-and-set. Returns whether it wrote; throws when the entry could
 * not be made to hold it. A deployment that is not terminal is not indexed
 * (its lock names it). The entry is created without reading first: there
 * is none but an earlier version's or a concurrent writer's, and then the
 * create fails and the entry is read.
 */
export async function indexDeployment(ctx: Pick<JsContext, "deployments">, rec: DeploymentRecord): Promise<boolean> {
  if (!isTerminalDeployment(rec.state)) return false;
  const key = indexKey(rec.spec.app, rec.spec.environment, rec.spec.id);
  const value = encode({ state: rec.state, lastSeq: rec.lastSeq } satisfies IndexEntry);
  let e: KvEntry | null | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) {
      e = await ctx.deployments.get(key);
      const cur = parseIndexEntry(e);
      if (cur && (cur.state === rec.state || isTerminalDeployment(cur.state) || cur.lastSeq >= rec.lastSeq)) return false;
    }
    try {
      if (e && e.operation === "PUT") await ctx.deployments.update(key, value, e.revision);
      else await ctx.deployments.create(key, value);
      return true;
    } catch {
      // an entry there (an earlier version's, another writer's): look at it
    }
  }
  throw new ConflictError(`list index entry ${key} not written: too many concurrent writers`);
}

/**
 * Deployments with a projection but no index entry (written before the
 * index existed), indexed now; run once at a coordinator's start, in the
 * background. Returns how many were indexed.
 */
export async function backfillIndex(ctx: Pick<JsContext, "js" | "jsm" | "deployments">, log: Logger): Promise<number> {
  // keys() on an empty bucket leaves its consumer behind (kvLastValues.ts).
  if ((await ctx.jsm.streams.info(kvStreamName(DEPLOYMENTS_BUCKET))).state.messages === 0) return 0;
  const indexed = new Set<string>();
  const ids: string[] = [];
  for await (const k of await ctx.deployments.keys()) {
    if (k.startsWith("d-")) ids.push(k);
    else if (k.startsWith("idx.")) indexed.add(k.slice(k.lastIndexOf(".") + 1));
  }
  let n = 0;
  for (const id of ids) {
    if (indexed.has(id)) continue;
    const loaded = await loadDeployment(ctx, id).catch(() => undefined);
    if (!loaded) continue;
    if (await indexDeployment(ctx, loaded.record).catch(() => false)) n++;
  }
  if (n > 0) log.info({ indexed: n }, "list index: deployments from before it indexed");
  return n;
}
