// Writes a deployment's projection to KV by compare-and-set on the revision it
// was read at. A newer projection written by someone else is never replaced
// by an older one. A large deployment's projection is a summary and shards
// (projectionShards.ts): the shards that changed are written first, then the
// summary naming their revisions, by compare-and-set.
import { createHash } from "node:crypto";
import { ConflictError } from "../errors.js";
import { kvValueBudget, maxPayload, ResourceExhaustedError } from "../limits.js";
import type { DeploymentRecord } from "../fold.js";
import { shardKey } from "../names.js";
import { isSharded, shardsOf, shardTargetsFor, projectionSummaryOf } from "../projectionShards.js";
import { encode } from "../schemas.js";
import type { JsContext } from "./context.js";
import { projectionLastSeq } from "./loadDeployment.js";

/**
 * What a writer remembers of the shards it stored last (the reconciler keeps
 * one per deployment): a shard whose content is unchanged is not written
 * again. A rollout of 100,000 targets at 1,000 in flight changes a few
 * shards between two saves; all 100 are written only the first time.
 */
export interface ShardMemo {
  /** SHA-1 of each shard's JSON as stored. */
  digests: string[];
  revisions: number[];
}

const sha1 = (b: Uint8Array): string => createHash("sha1").update(b).digest("base64");

/**
 * Returns the KV revision now holding a projection at least as new as
 * `record`. A projection (a shard, or a whole one of up to shardTargetsFor
 * targets) larger than the server takes is not written:
 * ResourceExhaustedError, which the caller notes and goes on from (the
 * projection is a cache of the stream; reads fold the events after the last
 * projection stored).
 */
export async function saveProjection(
  ctx: Pick<JsContext, "deployments"> & Partial<Pick<JsContext, "nc">>,
  record: DeploymentRecord,
  kvRevision: number,
  memo?: ShardMemo,
): Promise<number> {
  const id = record.spec.id;
  const budget = kvValueBudget(ctx.nc);
  const tooLarge = (what: string, bytes: number): ResourceExhaustedError =>
    new ResourceExhaustedError(
      `the projection of ${id} (${record.spec.targets.length} targets): ${what} is ${bytes} bytes, over the ${budget} bytes a KV value may take (server max_payload ${maxPayload(ctx.nc)}): not stored; reads fold it from the stream`,
    );
  let value: Uint8Array;
  let stored: ShardMemo | undefined;
  const size = shardTargetsFor(budget);
  if (isSharded(record, size)) {
    const shards = shardsOf(record, size).map((s) => encode(s));
    for (const [i, v] of shards.entries()) if (v.length > budget) throw tooLarge(`shard ${i}`, v.length);
    const digests = shards.map(sha1);
    // Written together: one round trip for all that changed.
    const revisions = await Promise.all(
      shards.map(async (v, i) => {
        const kept = memo && memo.digests[i] === digests[i] ? memo.revisions[i] : undefined;
        return kept ?? (await ctx.deployments.put(shardKey(id, i), v));
      }),
    );
    stored = { digests, revisions };
    value = encode(projectionSummaryOf(record, revisions, size));
    if (value.length > budget) throw tooLarge("the summary", value.length);
  } else {
    value = encode(record);
    if (value.length > budget) throw tooLarge("the record", value.length);
  }
  let revision = kvRevision;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const r = revision === 0 ? await ctx.deployments.create(id, value) : await ctx.deployments.update(id, value, revision);
      if (memo && stored) Object.assign(memo, stored);
      return r;
    } catch (err) {
      // Lost a race: look at what won.
      const entry = await ctx.deployments.get(id);
      const theirs = projectionLastSeq(entry);
      if (entry && theirs !== undefined && theirs >= record.lastSeq) return entry.revision;
      if (!entry) revision = 0;
      else if (entry.revision === revision) throw err; // not a CAS failure
      else revision = entry.revision;
    }
  }
  throw new ConflictError(`could not store the projection of ${id}: too many concurrent writers`);
}
