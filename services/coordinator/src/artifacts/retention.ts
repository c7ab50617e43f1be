// Artifact retention: after an upload stores a new artifact of an app, the
// app's bucket keeps the newest `keep` artifacts (artifacts.keepPerApp) and
// every artifact something may still deploy:
// - the desired release of each of the app's environments, and every
//   release before it that the bucket keeps (GetRelease's history: what
//   RollbackRelease, an automatic revert and convergence deploy);
// - the changeset of each active deployment of the app.
// The rest is deleted from the object store. Uploads are the only trigger:
// a bucket grows only by uploads, so it never holds more than `keep` plus
// what is in use, and nothing runs on a timer.
//
// One race is left open: a CreateDeployment that names an old artifact
// (neither among the newest nor in use) while another upload of the same
// app prunes. Its lock may be taken after the prune looked at the active
// deployments; the deployment then names an artifact that is gone, and its
// agents report it FAILED ("not found in the object store"). Upload it again and
// deploy again. (docs/limitations.md)
import {
  RELEASES_BUCKET,
  activeKey,
  artifactObjectName,
  kvLastValues,
  loadDeployment,
  releaseKey,
  type JsContext,
} from "../../../shared/src/index.js";
import { acknowledgedCreation, activeLocks } from "../createDeployment.js";
import type { ReleaseBook } from "../releases/releaseBook.js";

/**
 * The object names (`<name>@sha256:<hex>`) of `app`'s artifacts that a
 * release of the app, or an active deployment of it, names. Throws when any
 * of it cannot be read: a prune that cannot tell what is in use deletes
 * nothing.
 */
export async function artifactsInUse(ctx: Pick<JsContext, "jsm" | "js" | "deployments">, releases: ReleaseBook, app: string): Promise<Set<string>> {
  const inUse = new Set<string>();
  const add = (a: { name: string; digest: string } | undefined): void => {
    if (a) inUse.add(artifactObjectName(a.name, a.digest));
  };
  // Every environment the app has a desired release in, from the bucket
  // itself (not this coordinator's watched copy, which may trail it; one
  // batched direct get, where KV keys() leaves a consumer behind when no
  // key matches), then each one's history. App names hold no ".", so
  // <app>.* is this app's only.
  const prefix = releaseKey(app, "");
  const environments = (await kvLastValues(ctx.jsm, releases.kv, RELEASES_BUCKET, releaseKey(app, "*"))).map((v) => v.key.slice(prefix.length));
  for (const environment of environments) {
    for (const r of await releases.history(app, environment)) {
      add(r.artifact);
      add(r.previous?.artifact);
    }
  }
  // Active deployments of the app: its locks name them.
  for (const lock of await activeLocks(ctx, activeKey(app, "*"))) {
    // One acknowledged and not stored yet is stored first: its artifact is in use.
    const d = (await loadDeployment(ctx, lock.deploymentId)) ?? (await acknowledgedCreation(ctx, lock));
    add(d?.record.spec.changeset.artifact);
  }
  return inUse;
}
