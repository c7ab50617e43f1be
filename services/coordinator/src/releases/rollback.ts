// Going back to an earlier release, by a deployment like any other (every
// invariant holds for its targets), in two ways:
//
// - Automatic revert (strategy.auto_revert): when a deployment ends FAILED,
//   the targets it changed (those that started applying) are brought back to
//   the desired release recorded in its spec when it was created
//   (spec.revertTo), by a linked deployment (spec.reverts) with request id
//   revert.<failed id>. The reconciler asks for it before it gives the
//   pair's lock back (rollout/reconciler.ts #release), and the revert takes
//   that lock over from the terminal deployment: a crash in between is
//   repaired by the next sweep, and a retry finds the same deployment. An
//   operator's deployment of the pair that takes the lock first wins: the
//   revert is then not made (logged). A revert never becomes the desired
//   release (it was one already) and is never reverted itself.
// - RollbackRelease (deployctl rollback): the release before the desired one
//   (or an earlier one the request names, `to`: a deployment id or a version
//   from the history) is deployed to the agents the desired one covered; it
//   becomes the desired release when it succeeds, so a second rollback
//   undoes the first.
import {
  AUTO_REVERT,
  AlreadyExistsError,
  sameIdentity,
  PreconditionError,
  ValidationError,
  changedTargetsOf,
  revertToOf,
  formatSelector,
  loadDeployment,
  parseSelector,
  type DeploymentRecord,
  type DesiredRelease,
  type Identity,
  type JsContext,
  type Logger,
  type ReleaseSummary,
  type RestoredRelease,
} from "../../../shared/src/index.js";
import type { ArtifactStore } from "../artifacts/artifactStore.js";
import { createDeployment, deploymentOfRequest, type Created, type FleetOptions } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import type { CreateInput, StrategyInput } from "../requests.js";
import type { ReleaseBook } from "./releaseBook.js";

/** A desired release as a deployment restores it. */
export function restoredOf(d: ReleaseSummary | undefined): RestoredRelease | undefined {
  if (!d) return undefined;
  return { deploymentId: d.deploymentId, version: d.version, release: d.release, ...(d.artifact ? { artifact: { name: d.artifact.name, digest: d.artifact.digest } } : {}) };
}

const changesetOf = (r: RestoredRelease): CreateInput["changeset"] =>
  r.artifact ? { version: r.version, artifact: { name: r.artifact.name, digest: r.artifact.digest } } : { version: r.version };

export interface RollbackDeps {
  ctx: JsContext;
  registry: Registry;
  artifacts: ArtifactStore;
  releases: ReleaseBook;
  fleet: FleetOptions;
}

export const revertRequestId = (deploymentId: string): string => `revert.${deploymentId}`;

/** The deployment that reverts `rec` (reverted_by), found by its fixed request id (one KV get); "" when none is asked for or made yet. */
export async function revertOf(ctx: Pick<JsContext, "deployments">, rec: DeploymentRecord): Promise<string> {
  return revertToOf(rec) ? ((await deploymentOfRequest(ctx, revertRequestId(rec.spec.id))) ?? "") : "";
}

/**
 * The revert of a FAILED deployment with auto_revert, or of a CANCELLED one
 * whose cancel asked for it (fold.ts revertToOf), created (or found: the
 * request id is fixed); undefined when there is nothing to revert (the
 * finished message says why: plan.ts finishOf). Throws PreconditionError
 * when another deployment of the pair took the lock first.
 */
export async function startRevert(deps: RollbackDeps, rec: DeploymentRecord): Promise<Created | undefined> {
  const { spec } = rec;
  const to = revertToOf(rec);
  if (!to) return undefined;
  // Agents gone from the registry, or moved to another environment or app,
  // are no longer this pair's to bring back.
  const targets = changedTargetsOf(rec).filter((id) => {
    const a = deps.registry.get(id);
    return a !== undefined && a.record.environment === spec.environment && a.record.apps.includes(spec.app);
  });
  if (targets.length === 0) return undefined;
  const input: CreateInput = {
    requestId: revertRequestId(spec.id),
    app: spec.app,
    environment: spec.environment,
    changeset: changesetOf(to),
    strategy: {
      maxConcurrency: { count: spec.strategy.maxConcurrency },
      // Bring back as many as possible: one that fails does not stop the others.
      maxFailures: { count: targets.length },
      deliveryTimeoutMs: spec.strategy.deliveryTimeoutMs,
      applyTimeoutMs: spec.strategy.applyTimeoutMs,
    },
    targets,
    note: `${rec.state === "CANCELLED" ? `revert of ${spec.id}, cancelled by ${rec.cancelledBy ?? "?"} with revert` : `auto_revert of ${spec.id}`}: back to ${to.version} (release ${to.release})`,
    reverts: spec.id,
    restores: to,
    offlineAllowed: true,
  };
  return createDeployment(deps.ctx, deps.registry, deps.artifacts, input, AUTO_REVERT, deps.fleet);
}

export interface RollbackInput {
  requestId: string;
  app: string;
  environment: string;
  strategy: StrategyInput;
  note: string;
  /** The release to go back to: a deployment id or a version of the history; absent: the one before the desired release. */
  to?: string;
}

/**
 * The release of `history` (GetRelease's, newest first: the desired one,
 * then the ones before it) that `to` names: the one its deployment made,
 * else the newest of that version. Each entry also names the release before
 * it, so the oldest kept entry's predecessor counts too.
 */
export function releaseNamed(history: readonly DesiredRelease[], to: string): ReleaseSummary | undefined {
  const known: ReleaseSummary[] = history.flatMap((r) => (r.previous ? [r, r.previous] : [r]));
  return known.find((r) => r.deploymentId === to) ?? known.find((r) => r.version === to);
}

/**
 * RollbackRelease: the release before the desired one, deployed to the
 * agents the desired one covers (every agent of the pair, its selector, or
 * its deployment's explicit targets).
 */
export async function rollbackRelease(deps: RollbackDeps, input: RollbackInput, requester: Identity, log: Logger): Promise<Created> {
  // A retry of a rollback already accepted is answered with it, even once it
  // has succeeded (it is the desired release then, and "the release before"
  // has changed: resolved again, the same request would be another).
  const existing = await deploymentOfRequest(deps.ctx, input.requestId);
  if (existing) {
    const loaded = await loadDeployment(deps.ctx, existing);
    const spec = loaded?.record.spec;
    if (loaded && spec?.restores && spec.app === input.app && spec.environment === input.environment && sameIdentity({ name: spec.requestedBy, via: spec.requestedByVia ?? "none" }, requester)) {
      return loaded;
    }
    throw new AlreadyExistsError(`request_id ${input.requestId} was already used for another request (deployment ${existing}); choose another request_id`);
  }
  const history = await deps.releases.history(input.app, input.environment);
  const desired = history[0];
  if (!desired) throw new PreconditionError(`no deployment of app ${input.app} to environment ${input.environment} has succeeded: there is no release to roll back`);
  let previous: RestoredRelease | undefined;
  if (input.to === undefined) {
    previous = restoredOf(desired.previous);
    if (!previous) {
      throw new PreconditionError(`${input.app} in ${input.environment} has had one desired release only (${desired.release}, deployment ${desired.deploymentId}): there is no earlier release to roll back to`);
    }
  } else {
    const named = releaseNamed(history, input.to);
    if (!named) {
      throw new PreconditionError(
        `to: "${input.to.slice(0, 128)}" is neither the deployment id nor the version of a release of ${input.app} in ${input.environment} that the history keeps (deployctl releases ${input.app} ${input.environment} lists them)`,
      );
    }
    if (named.deploymentId === desired.deploymentId || named.release === desired.release) {
      throw new PreconditionError(`to: ${input.to.slice(0, 128)} is the desired release of ${input.app} in ${input.environment} already (${desired.release}, deployment ${desired.deploymentId})`);
    }
    previous = restoredOf(named)!;
  }
  const create: CreateInput = {
    requestId: input.requestId,
    app: input.app,
    environment: input.environment,
    changeset: changesetOf(previous),
    strategy: input.strategy,
    targets: [],
    note: input.note || `rollback of ${desired.release} (deployment ${desired.deploymentId}) to ${previous.release}`,
    restores: previous,
  };
  if (desired.selection === "selector" && desired.selector) {
    const requirements = parseSelector(desired.selector, "selector");
    create.selector = { text: formatSelector(requirements), requirements };
  } else if (desired.selection === "targets") {
    const d = await loadDeployment(deps.ctx, desired.deploymentId);
    if (!d) throw new PreconditionError(`deployment ${desired.deploymentId} of the desired release is not readable (expired from DEPLOY_EVENTS?): deploy ${previous.version} with deployctl deploy instead`);
    const live = d.record.spec.targets.filter((id) => deps.registry.get(id) !== undefined);
    if (live.length === 0) throw new ValidationError("app", `no agent the desired release ${desired.release} was deployed to is registered any more`);
    create.targets = live;
    create.offlineAllowed = true;
  }
  const created = await createDeployment(deps.ctx, deps.registry, deps.artifacts, create, requester, deps.fleet);
  log.info({ deploymentId: created.record.spec.id, app: input.app, environment: input.environment, restores: previous.release, requestedBy: requester.name }, "rollback requested");
  return created;
}
