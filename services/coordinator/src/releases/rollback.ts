// Going back to an earlier release, by a deployment like any other (every
// invariant holds for its targets), in two ways:
//
// - A revert: the targets a deployment changed back to the release desired
//   before it, made at most once per deployment (request id revert.<id>),
//   asked by strategy.auto_revert, by a cancel with revert (the same, when
//   it ends CANCELLED: the release is in its cancel event), or afterwards
//   by RevertDeployment. Automatic revert: when a deployment ends FAILED,
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
  NotFoundError,
  sameIdentity,
  PreconditionError,
  isTerminalDeployment,
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
import { acknowledgedDeployment, createDeployment, deploymentOfRequest, type Created, type FleetOptions } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import type { CreateInput, StrategyInput } from "../requests.js";
import { sameArtifact } from "./agentReleases.js";
import type { ReleaseBook } from "./releaseBook.js";

/** A desired release as a deployment restores it. */
export function restoredOf(d: ReleaseSummary | undefined): RestoredRelease | undefined {
  if (!d) return undefined;
  return { deploymentId: d.deploymentId, version: d.version, release: d.release, ...(d.artifact ? { artifact: { name: d.artifact.name, digest: d.artifact.digest } } : {}) };
}

export const changesetOf = (r: RestoredRelease): CreateInput["changeset"] =>
  r.artifact ? { version: r.version, artifact: { name: r.artifact.name, digest: r.artifact.digest } } : { version: r.version };

export interface RollbackDeps {
  ctx: JsContext;
  registry: Registry;
  artifacts: ArtifactStore;
  releases: ReleaseBook;
  fleet: FleetOptions;
}

export const revertRequestId = (deploymentId: string): string => `revert.${deploymentId}`;

/**
 * The deployment that reverts `rec` (reverted_by), found by its fixed request
 * id (one KV get); "" when none exists. Any FAILED or CANCELLED deployment
 * may have one: by auto_revert, a cancel with revert, or RevertDeployment.
 */
export async function revertOf(ctx: Pick<JsContext, "deployments">, rec: DeploymentRecord): Promise<string> {
  const mayHaveOne = (rec.state === "FAILED" || rec.state === "CANCELLED") && rec.spec.reverts === undefined;
  return mayHaveOne ? ((await deploymentOfRequest(ctx, revertRequestId(rec.spec.id))) ?? "") : "";
}

/**
 * The request of the revert of `rec` to `to`: its changed targets (those
 * that started applying it) still registered in its app and environment,
 * one at a time as `rec` went, every failure tolerated (bring back as many as
 * possible). Undefined when no such target is left.
 */
function revertRequest(deps: RollbackDeps, rec: DeploymentRecord, to: RestoredRelease, note: string): CreateInput | undefined {
  const { spec } = rec;
  // Agents gone from the registry, or moved to another environment or app,
  // are no longer this pair's to bring back.
  const targets = changedTargetsOf(rec).filter((id) => {
    const a = deps.registry.get(id);
    return a !== undefined && a.record.environment === spec.environment && a.record.apps.includes(spec.app);
  });
  if (targets.length === 0) return undefined;
  return {
    requestId: revertRequestId(spec.id),
    app: spec.app,
    environment: spec.environment,
    changeset: changesetOf(to),
    strategy: {
      maxConcurrency: { count: spec.strategy.maxConcurrency },
      maxFailures: { count: targets.length },
      deliveryTimeoutMs: spec.strategy.deliveryTimeoutMs,
      applyTimeoutMs: spec.strategy.applyTimeoutMs,
    },
    targets,
    note,
    reverts: spec.id,
    restores: to,
    offlineAllowed: true,
  };
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
  const why = rec.state === "CANCELLED" ? `revert of ${spec.id}, cancelled by ${rec.cancelledBy ?? "?"} with revert` : `auto_revert of ${spec.id}`;
  const input = revertRequest(deps, rec, to, `${why}: back to ${to.version} (release ${to.release})`);
  return input ? createRevert(deps, input, AUTO_REVERT) : undefined;
}

/** The revert of `input.reverts`, for whoever creates it: another caller may have made it first (RevertDeployment beside the coordinator's own), and then that one is the revert. */
async function createRevert(deps: RollbackDeps, input: CreateInput, requester: Identity): Promise<Created> {
  try {
    return await createDeployment(deps.ctx, deps.registry, deps.artifacts, input, requester, deps.fleet);
  } catch (err) {
    if (err instanceof AlreadyExistsError) {
      const other = await revertMade(deps, input.reverts!);
      if (other) return other;
    }
    throw err;
  }
}

/** The revert of deployment `id`, whoever made it; undefined when none exists. */
async function revertMade(deps: RollbackDeps, id: string): Promise<Created | undefined> {
  const revertId = await deploymentOfRequest(deps.ctx, revertRequestId(id));
  return revertId ? loadDeployment(deps.ctx, revertId) : undefined;
}

/**
 * RevertDeployment: the revert of a deployment that ended FAILED or
 * CANCELLED without one (no auto_revert, a cancel without revert), asked
 * afterwards: its changed targets back to the release desired before it.
 * The same request id as every revert of it (revertRequestId), so it is made
 * once whoever asks, and asked again it answers with the one made (by
 * anyone: auto_revert, a cancel with revert, another operator).
 * FAILED_PRECONDITION, nothing written, when there is nothing to revert: the
 * deployment is running (cancel it with revert), SUCCEEDED (it is a desired
 * release: RollbackRelease), a revert itself, changed no target still
 * registered, or another deployment of the pair succeeded since it ended
 * (its targets may have been deployed again; deploy what you want instead).
 */
export async function revertDeployment(deps: RollbackDeps, id: string, note: string, requester: Identity, log: Logger): Promise<Created> {
  const rec = ((await loadDeployment(deps.ctx, id)) ?? (await acknowledgedDeployment(deps.ctx, id)))?.record;
  if (!rec) throw new NotFoundError(`deployment ${id} not found`);
  const existing = await revertMade(deps, id);
  if (existing) return existing;
  const { spec } = rec;
  const what = `deployment ${id} cannot be reverted`;
  if (!isTerminalDeployment(rec.state)) throw new PreconditionError(`${what}: it is still ${rec.state}; to stop it and roll back, cancel it with revert (deployctl cancel ${id} --revert)`);
  if (spec.reverts !== undefined) throw new PreconditionError(`${what}: it is the revert of ${spec.reverts} itself`);
  if (rec.state === "SUCCEEDED") throw new PreconditionError(`${what}: it SUCCEEDED, so it made a desired release; to go back from that, deployctl rollback ${spec.app} ${spec.environment}`);
  const desired = await deps.releases.read(spec.app, spec.environment);
  if (!desired) throw new PreconditionError(`${what}: no deployment of ${spec.app} to ${spec.environment} has succeeded, so there is no release to go back to`);
  if (desired.finishedSeq > (rec.finishedSeq ?? rec.lastSeq)) {
    throw new PreconditionError(
      `${what}: deployment ${desired.deploymentId} (${desired.release}) succeeded after it ended, and is the desired release; its targets may have been deployed again since: deploy the release you want instead`,
    );
  }
  const to = restoredOf(desired)!;
  if (to.version === spec.changeset.version && sameArtifact(to.artifact, spec.changeset.artifact)) {
    throw new PreconditionError(`${what}: it installs the desired release of ${spec.app} in ${spec.environment} itself (${to.release})`);
  }
  const input = revertRequest(deps, rec, to, `revert of ${spec.id}${note ? `: ${note}` : ""}: back to ${to.version} (release ${to.release})`);
  if (!input) throw new PreconditionError(`${what}: no target of it started applying, or none of them is registered in ${spec.environment} for ${spec.app} any more: nothing changed to bring back`);
  const created = await createRevert(deps, input, requester);
  log.info({ deploymentId: created.record.spec.id, reverts: id, restores: to.release, requestedBy: requester.name }, "revert requested");
  return created;
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
