// Writes a deployment's projection to KV by compare-and-set on the revision it
// was read at. A newer projection written by someone else is never replaced
// by an older one.
import { ConflictError } from "../errors.js";
import { kvValueBudget, maxPayload, ResourceExhaustedError } from "../limits.js";
import type { DeploymentRecord } from "../fold.js";
import { encode } from "../schemas.js";
import type { JsContext } from "./context.js";
import { parseProjection } from "./loadDeployment.js";

/**
 * Returns the KV revision now holding a projection at least as new as
 * `record`. A projection larger than the server takes is not written:
 * ResourceExhaustedError, which the caller notes and goes on from (the
 * projection is a cache of the stream; reads fold the events after the last
 * projection stored).
 */
export async function saveProjection(
  ctx: Pick<JsContext, "deployments"> & Partial<Pick<JsContext, "nc">>,
  record: DeploymentRecord,
  kvRevision: number,
): Promise<number> {
  const id = record.spec.id;
  const value = encode(record);
  const budget = kvValueBudget(ctx.nc);
  if (value.length > budget) {
    throw new ResourceExhaustedError(
      `the projection of ${id} is ${value.length} bytes (${Object.keys(record.targets).length} targets), over the ${budget} bytes a KV value may take (server max_payload ${maxPayload(ctx.nc)}): not stored; reads fold it from the stream`,
    );
  }
  let revision = kvRevision;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return revision === 0
        ? await ctx.deployments.create(id, value)
        : await ctx.deployments.update(id, value, revision);
    } catch (err) {
      // Lost a race: look at what won.
      const entry = await ctx.deployments.get(id);
      const theirs = parseProjection(entry);
      if (entry && theirs && theirs.lastSeq >= record.lastSeq) return entry.revision;
      if (!entry) revision = 0;
      else if (entry.revision === revision) throw err; // not a CAS failure
      else revision = entry.revision;
    }
  }
  throw new ConflictError(`could not store the projection of ${id}: too many concurrent writers`);
}
