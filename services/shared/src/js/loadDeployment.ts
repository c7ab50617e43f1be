// Current state of a deployment: the KV projection, caught up from the event
// stream. KV is never trusted blindly: it records the last sequence it
// reflects, and everything after that is folded in here.
import type { KvEntry } from "@nats-io/kv";
import { DEPLOYMENT_SCHEMA } from "../names.js";
import { foldEvent, skipUnreadable, type DeploymentRecord } from "../fold.js";
import type { JsContext } from "./context.js";
import { readEvents } from "./readEvents.js";

export interface LoadedDeployment {
  record: DeploymentRecord;
  /** KV revision the record was read at; 0 when KV had no (usable) entry. */
  kvRevision: number;
  /** lastSeq of the KV entry; the record is newer when record.lastSeq is larger. */
  kvLastSeq: number;
}

/** Reads a projection from KV; undefined when absent or not one we can use. */
export function parseProjection(entry: KvEntry | null): DeploymentRecord | undefined {
  if (!entry || entry.operation !== "PUT") return undefined;
  try {
    const v = entry.json<DeploymentRecord>();
    // Our own write, so a shape check suffices; anything else is rebuilt
    // from the stream rather than trusted.
    if (v?.schema !== DEPLOYMENT_SCHEMA || typeof v.lastSeq !== "number" || typeof v.targets !== "object") return undefined;
    return v;
  } catch {
    return undefined;
  }
}

/**
 * With `budgetMs`, the catch-up stops folding once that long has passed since
 * the call (after at least the created event): the record is then exact up
 * to its lastSeq, a little behind the stream. For reads that must answer in
 * bounded time on a saturated server (GetDeployment), not for decisions.
 */
export async function loadDeployment(
  ctx: Pick<JsContext, "js" | "jsm" | "deployments">,
  deploymentId: string,
  onInvalid?: (seq: number, why: string) => void,
  opts: { budgetMs?: number } = {},
): Promise<LoadedDeployment | undefined> {
  const deadline = opts.budgetMs === undefined ? undefined : Date.now() + opts.budgetMs;
  const entry = await ctx.deployments.get(deploymentId);
  const fromKv = parseProjection(entry);
  return catchUp(ctx, deploymentId, fromKv, fromKv && entry ? entry.revision : 0, onInvalid, undefined, deadline);
}

/**
 * Folds everything after `record.lastSeq` into `record` (mutated): up to the
 * deployment's last event now, or only up to `untilSeq` when given (a prefix
 * of the stream is still an exact fold; a reconcile woken by event S needs
 * no more, and is spared the round trip that asks for the last sequence).
 */
export async function catchUp(
  ctx: Pick<JsContext, "js" | "jsm">,
  deploymentId: string,
  record: DeploymentRecord | undefined,
  kvRevision: number,
  onInvalid?: (seq: number, why: string) => void,
  untilSeq?: number,
  /** Stop folding past this time (epoch ms) once there is a record: loadDeployment's budgetMs. */
  deadline?: number,
): Promise<LoadedDeployment | undefined> {
  const kvLastSeq = record?.lastSeq ?? 0;
  let rec = record;
  for await (const e of readEvents(ctx, deploymentId, { afterSeq: kvLastSeq, ...(untilSeq === undefined ? {} : { untilSeq }) })) {
    if (e.invalid !== undefined) {
      onInvalid?.(e.seq, e.invalid);
      skipUnreadable(rec, e);
    } else {
      rec = foldEvent(rec, e).record;
    }
    if (deadline !== undefined && rec !== undefined && Date.now() > deadline) break;
  }
  return rec ? { record: rec, kvRevision, kvLastSeq } : undefined;
}
