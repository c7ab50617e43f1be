// Promotion: build once, deploy many. A CreateDeployment with promote_from
// deploys the desired release of its app in that other environment as it
// is: the same version and the same artifact digest (an app's bundles are
// in one bucket for all its environments), never a bundle packed again.
// The release it resolved to is recorded in the spec (promotedFrom) and
// shown as Deployment.promoted_from.
import { PreconditionError } from "../../../shared/src/index.js";
import type { CreateInput } from "../requests.js";
import type { ReleaseBook } from "./releaseBook.js";
import { changesetOf, restoredOf } from "./rollback.js";

/**
 * `input` with its changeset and promotedFrom resolved from promote_from's
 * desired release, read now; `input` itself when it promotes nothing. A
 * retry is still the same request when that release has moved meanwhile:
 * the request's hash covers the environment named, not this resolution
 * (requests.ts requestHash), so the retry is answered with the deployment
 * the first call made.
 */
export async function resolvePromotion(releases: Pick<ReleaseBook, "history">, input: CreateInput): Promise<CreateInput> {
  const from = input.promoteFrom;
  if (from === undefined) return input;
  const desired = restoredOf((await releases.history(input.app, from))[0]);
  if (!desired) {
    throw new PreconditionError(`promote_from: no deployment of app ${input.app} to environment ${from} has succeeded, so it has no desired release to promote (deployctl releases ${input.app} ${from})`);
  }
  return { ...input, changeset: changesetOf(desired), promotedFrom: { environment: from, ...desired } };
}
