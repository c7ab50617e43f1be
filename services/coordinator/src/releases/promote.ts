// Promotion: build once, deploy many. A CreateDeployment with promote_from
// deploys the desired release of its app in that other environment as it
// is: the same version and the same artifact digest (an app's bundles are
// in one bucket for all its environments), never a bundle packed again.
// The release it resolved to is recorded in the spec (promotedFrom) and
// shown as Deployment.promoted_from.
import { PreconditionError, type JsContext, type PolicyRecord, type PromotedRelease } from "../../../shared/src/index.js";
import { policyRefusal, policySoak } from "../policies.js";
import { deploymentOfRequest } from "../createDeployment.js";
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
export async function resolvePromotion(releases: Pick<ReleaseBook, "history">, input: CreateInput, gate: PromotionGate): Promise<CreateInput> {
  const from = input.promoteFrom;
  if (from === undefined) return input;
  // The environment's policy before the release is looked up: a promotion
  // from an environment it does not accept is refused whatever that holds
  // (createDeployment asks it again, as of every creation).
  const policy = gate.policy?.(input.environment, input.app) ?? [];
  const byPolicy = policyRefusal(input, policy);
  if (byPolicy !== undefined && (await gate.createdAs(input.requestId)) === undefined) throw new PreconditionError(byPolicy);
  const current = (await releases.history(input.app, from))[0];
  const desired = restoredOf(current);
  if (!current || !desired) {
    throw new PreconditionError(`promote_from: no deployment of app ${input.app} to environment ${from} has succeeded, so it has no desired release to promote (deployctl releases ${input.app} ${from})`);
  }
  const promotedFrom = { environment: from, ...desired, succeededAt: current.succeededAt };
  const moved =
    gate.shown !== undefined && desired.deploymentId !== gate.shown
      ? `the desired release of ${input.app} in ${from} is now ${desired.version} (deployment ${desired.deploymentId}), not ${gate.shown}'s: promote from its page`
      : undefined;
  const refused = moved ?? soakProblem(input, promotedFrom, gate.now()) ?? policySoakProblem(input, promotedFrom, gate.now(), policy);
  // A retry of a promotion already created is answered with its deployment
  // (createDeployment), whatever the environment holds now: the gate is
  // asked of new requests only (one KV get, and only when it refuses).
  if (refused !== undefined && (await gate.createdAs(input.requestId)) === undefined) throw new PreconditionError(refused);
  return { ...input, changeset: changesetOf(desired), promotedFrom };
}

/** The gate of a CreateDeployment (or the dashboard's promotion): a dry run is not a retry, and is refused as a new request would be. */
export function promotionGate(
  ctx: Pick<JsContext, "deployments">,
  now: () => number,
  more: { dryRun?: boolean; shown?: string; policy?: (environment: string, app: string) => PolicyRecord[] } = {},
): PromotionGate {
  return {
    now,
    createdAs: (requestId) => (more.dryRun === true ? Promise.resolve(undefined) : deploymentOfRequest(ctx, requestId)),
    ...(more.shown !== undefined ? { shown: more.shown } : {}),
    ...(more.policy ? { policy: more.policy } : {}),
  };
}

export interface PromotionGate {
  /** Now, on the servers' clock: a release's succeededAt is its finished event's stream time. */
  now: () => number;
  /** The deployment a request id was already accepted as (createDeployment.ts deploymentOfRequest). */
  createdAs: (requestId: string) => Promise<string | undefined>;
  /** The deployment whose release the caller means (the dashboard's page): refused when the desired release is another's by now. */
  shown?: string;
  /** The environment's policy (policies.ts): its least soak is asked as promote_min_soak is. */
  policy?: (environment: string, app: string) => PolicyRecord[];
}

/**
 * Why `promoted` has not soaked long enough for promote_min_soak (undefined:
 * it has, or none was asked): how long it has been the desired release of
 * its environment, and when it will have soaked.
 */
export function soakProblem(input: Pick<CreateInput, "app" | "promoteMinSoakMs">, promoted: PromotedRelease, nowMs: number, asker = "promote_min_soak"): string | undefined {
  const min = input.promoteMinSoakMs;
  if (min === undefined || promoted.succeededAt === undefined) return undefined;
  const since = Date.parse(promoted.succeededAt);
  const soaked = nowMs - since;
  if (soaked >= min) return undefined;
  return (
    `${asker}: the desired release of app ${input.app} in ${promoted.environment} (${promoted.version}, release ${promoted.release}, deployment ${promoted.deploymentId}) ` +
    `succeeded ${soakText(Math.max(0, soaked))} ago, at ${promoted.succeededAt}; it can be promoted with a soak of ${soakText(min)} from ${new Date(since + min).toISOString()}`
  );
}

/** The least soak the environment's policy asks of a promotion from where it names (policies.ts policySoak), as soakProblem words it. */
function policySoakProblem(input: Pick<CreateInput, "app" | "promoteFrom">, promoted: PromotedRelease, nowMs: number, policy: readonly PolicyRecord[]): string | undefined {
  const soak = policySoak(policy, input.promoteFrom);
  return soak && soakProblem({ app: input.app, promoteMinSoakMs: soak.ms }, promoted, nowMs, `${soak.origin} asks a soak of ${soakText(soak.ms)}`);
}

/** 45s, 12m30s, 2h5m, 3d4h: as deployctl's --min-soak is written, to the second. */
export function soakText(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), "d"],
    [Math.floor((s % 86_400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return `${ms}ms`;
  // The two largest units: "2h5m", not "2h5m12s".
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join("");
}
