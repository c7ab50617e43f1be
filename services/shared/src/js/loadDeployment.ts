// Current state of a deployment: the KV projection, caught up from the event
// stream. KV is never trusted blindly: it records the last sequence it
// reflects, and everything after that is folded in here.
import type { KvEntry } from "@nats-io/kv";
import { shardKey } from "../names.js";
import { assembleProjection, projectionShape, type ProjectionSummary } from "../projectionShards.js";
import { foldEvent, skipUnreadable, type DeploymentRecord, type HeldChunks } from "../fold.js";
import type { JsContext } from "./context.js";
import { readEvents } from "./readEvents.js";

export interface LoadedDeployment {
  record: DeploymentRecord;
  /** KV revision the record was read at; 0 when KV had no (usable) entry. */
  kvRevision: number;
  /** lastSeq of the KV entry; the record is newer when record.lastSeq is larger. */
  kvLastSeq: number;
}

/**
 * Reads a whole projection from one KV entry; undefined when absent, not one
 * we can use, or a sharded deployment's summary (readProjection reads those).
 */
export function parseProjection(entry: KvEntry | null): DeploymentRecord | undefined {
  const v = entryJson(entry);
  // Our own write, so a shape check suffices; anything else is rebuilt
  // from the stream rather than trusted.
  return projectionShape(v) === "whole" ? (v as DeploymentRecord) : undefined;
}

function entryJson(entry: KvEntry | null): unknown {
  if (!entry || entry.operation !== "PUT") return undefined;
  try {
    return entry.json<unknown>();
  } catch {
    return undefined;
  }
}

/** The lastSeq of the projection in `entry`, whole or summary; undefined when it is none. */
export function projectionLastSeq(entry: KvEntry | null): number | undefined {
  const v = entryJson(entry);
  return projectionShape(v) === undefined ? undefined : (v as DeploymentRecord).lastSeq;
}

/**
 * The projection of `deploymentId` (projectionShards.ts: one value, or a
 * summary and the shards at the revisions it names) and the revision of its
 * key; undefined when there is none usable. A shard no longer kept at its
 * revision (a writer replaced it 5 times since the summary was read) makes
 * it read the summary again, up to 3 times: then the caller folds the
 * stream (exact, slower).
 */
export async function readProjection(ctx: Pick<JsContext, "deployments">, deploymentId: string): Promise<{ record: DeploymentRecord; revision: number } | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const entry = await ctx.deployments.get(deploymentId);
    const v = entryJson(entry);
    const shape = projectionShape(v);
    if (!entry || shape === undefined) return undefined;
    if (shape === "whole") return { record: v as DeploymentRecord, revision: entry.revision };
    const summary = v as ProjectionSummary;
    const shards = await Promise.all(
      summary.shards.revisions.map(async (revision, i) => {
        const e = await ctx.deployments.get(shardKey(deploymentId, i), { revision }).catch(() => null);
        return e && e.operation === "PUT" && e.revision === revision ? entryJson(e) : undefined;
      }),
    );
    if (shards.some((x) => x === undefined)) continue;
    const record = assembleProjection(summary, shards);
    if (typeof record === "string") return undefined;
    return { record, revision: entry.revision };
  }
  return undefined;
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
  const fromKv = await readProjection(ctx, deploymentId);
  return catchUp(ctx, deploymentId, fromKv?.record, fromKv?.revision ?? 0, onInvalid, undefined, deadline);
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
  // A large deployment read from its first event: its target chunks come before its created event.
  const held: HeldChunks = new Map();
  for await (const e of readEvents(ctx, deploymentId, { afterSeq: kvLastSeq, ...(untilSeq === undefined ? {} : { untilSeq }) })) {
    if (e.invalid !== undefined) {
      onInvalid?.(e.seq, e.invalid);
      skipUnreadable(rec, e);
    } else {
      rec = foldEvent(rec, e, held).record;
    }
    if (deadline !== undefined && rec !== undefined && Date.now() > deadline) break;
  }
  return rec ? { record: rec, kvRevision, kvLastSeq } : undefined;
}
