// Records the desired release of an (app, environment): one compare-and-set
// on deploy_releases/<app>.<env>, made after the deployment.finished
// SUCCEEDED event of the deployment that defines it, by whichever
// coordinator sees that deployment terminal (the one that appended the
// event, or any later reconcile or sweep: the lock of the pair is given back
// only after this write, so a crash in between is repaired by the next
// reconcile; CreateDeployment records it too before taking over such a
// lock). Idempotent, and ordered by the stream: a release is only ever
// replaced by one whose finished event has a later sequence, so replays and
// late writers change nothing.
import type { KV, KvEntry } from "@nats-io/kv";
import {
  ConflictError,
  RELEASE_SCHEMA,
  encode,
  parseDesiredRelease,
  releaseKey,
  releaseName,
  summaryOf,
  type DeploymentRecord,
  type DesiredRelease,
} from "../../../shared/src/index.js";

/** What `rec` makes the desired release (without its predecessor); undefined unless it SUCCEEDED and is no convergence deployment. */
export function desiredReleaseOf(rec: DeploymentRecord): DesiredRelease | undefined {
  const { spec } = rec;
  // A convergence deployment brings one agent to the desired release, an
  // automatic revert the targets a failed deployment changed back to it;
  // neither defines one (each installs the same changeset under its own id).
  if (rec.state !== "SUCCEEDED" || spec.convergesTo !== undefined || spec.reverts !== undefined) return undefined;
  const a = spec.changeset.artifact;
  return {
    schema: RELEASE_SCHEMA,
    app: spec.app,
    environment: spec.environment,
    deploymentId: spec.id,
    version: spec.changeset.version,
    ...(a ? { artifact: { name: a.name, digest: a.digest } } : {}),
    release: releaseName(spec.changeset.version, spec.id),
    succeededAt: rec.finishedAt ?? rec.updatedAt,
    // No coordinator decides anything after the finished event, so the
    // last coordinator sequence is that event's when the fold did not keep it.
    finishedSeq: rec.finishedSeq ?? rec.lastCoordinatorSeq,
    // Specs from before the selection was recorded spread to no one.
    selection: spec.selection ?? "targets",
    ...(spec.selector !== undefined ? { selector: spec.selector } : {}),
  };
}

/** The key's revision now (0: never written) and the desired release it holds. */
async function current(kv: KV, key: string): Promise<{ revision: number; release?: DesiredRelease }> {
  const e = await kv.get(key);
  const release = releaseOfEntry(e);
  return { revision: e?.revision ?? 0, ...(release ? { release } : {}) };
}

/** The desired release stored in `e`; undefined when none (or not one this version can read: replaced). */
export function releaseOfEntry(e: KvEntry | null): DesiredRelease | undefined {
  if (!e || e.operation !== "PUT") return undefined;
  try {
    return parseDesiredRelease(e.value);
  } catch {
    return undefined;
  }
}

export type RecordOutcome = "recorded" | "already" | "newer" | "not-a-release";

/**
 * Makes `rec`'s release the desired one of its (app, environment) unless
 * that one is already it or finished later. The value names the desired
 * release it replaces (`previous`), so history and rollback find it even
 * past the bucket's history. `known`: the caller's watched copy of the key
 * (revision 0 and no release: the copy holds no such key).
 */
export async function recordDesiredRelease(kv: KV, rec: DeploymentRecord, known?: { release?: DesiredRelease; revision: number }): Promise<RecordOutcome> {
  const mine = desiredReleaseOf(rec);
  if (!mine) return "not-a-release";
  const key = releaseKey(mine.app, mine.environment);
  let failed: { revision: number; err: unknown } | undefined;
  for (let attempt = 0; attempt < 10; attempt++) {
    // The first try goes by `known`, the caller's watched copy of the key
    // (releaseBook.ts), when it has one: a read less before the lock of a
    // deployment that succeeded is given back. A copy can only trail the
    // bucket, whose releases only move to later finished events: a later
    // one there makes this compare-and-set fail, and the next try reads. A
    // copy without the key tries a create: a pair's first release costs no
    // read (a fan-out of 10 to a new app: 61 messages to 60).
    const e = attempt === 0 && known ? known : await current(kv, key);
    // A write that failed on a revision still current lost no race: report it.
    if (failed && e.revision === failed.revision) throw failed.err;
    const theirs = e.release;
    if (theirs && theirs.finishedSeq >= mine.finishedSeq) return theirs.deploymentId === mine.deploymentId ? "already" : "newer";
    const value = encode(theirs ? { ...mine, previous: summaryOf(theirs) } : mine);
    try {
      // Compare-and-set on the revision read (create when there is none).
      if (e.revision > 0) await kv.update(key, value, e.revision);
      else await kv.create(key, value);
      return "recorded";
    } catch (err) {
      failed = { revision: e?.revision ?? 0, err };
    }
  }
  throw new ConflictError(`could not record the desired release of ${mine.app} in ${mine.environment}: too many concurrent writers`);
}
