// CreateDeployment: one request, one deployment, whatever is retried.
//
// 1. The request id maps to a deployment id through a KV create
//    (req.<sha256(request id)>): of ten concurrent identical requests exactly
//    one creates the mapping; the others read it, compare the body hash and
//    return the same deployment (or ALREADY_EXISTS for a different body).
// 2. The (app, environment) lock (active.<app>.<env>) is taken by KV create;
//    a lock whose deployment is terminal, or was never created, is taken over
//    by compare-and-set.
// 3. The deployment.created event is appended with expected last subject
//    sequence 0, so it exists at most once even if steps 1-2 were raced.
// A crash between any two steps leaves state that a retry of the same request
// completes.
import { randomBytes, createHash } from "node:crypto";
import {
  AlreadyExistsError,
  ConflictError,
  COORDINATOR_SOURCE,
  PreconditionError,
  ValidationError,
  activeKey,
  appendEvent,
  encode,
  isTerminalDeployment,
  loadDeployment,
  requestKey,
  saveProjection,
  type DeploymentRecord,
  type DeploymentSpec,
  type JsContext,
} from "../../shared/src/index.js";
import type { KvEntry } from "@nats-io/kv";
import type { Registry } from "./registry.js";
import { requestHash, type CreateInput } from "./requests.js";

/** A lock whose deployment never appeared is abandoned after this long (a creator that crashed). */
const ABANDONED_LOCK_MS = 30_000;

/** Time-ordered, so listing keys newest first needs no index: d-<ms base36>-<random>. */
export function newDeploymentId(now = Date.now()): string {
  return `d-${now.toString(36).padStart(9, "0")}-${randomBytes(4).toString("hex")}`;
}

interface RequestMapping {
  deploymentId: string;
  requestHash: string;
}

function parseMapping(e: KvEntry): RequestMapping | undefined {
  try {
    const v = e.json<RequestMapping>();
    return typeof v?.deploymentId === "string" && typeof v.requestHash === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

async function claimRequest(ctx: JsContext, input: CreateInput, hash: string): Promise<string> {
  const key = requestKey(createHash("sha256").update(input.requestId).digest("hex").slice(0, 40));
  for (let attempt = 0; attempt < 5; attempt++) {
    const e = await ctx.deployments.get(key);
    const existing = e && e.operation === "PUT" ? parseMapping(e) : undefined;
    if (existing) {
      if (existing.requestHash !== hash) {
        throw new AlreadyExistsError(`request_id ${input.requestId} was already used for a different request (deployment ${existing.deploymentId})`);
      }
      return existing.deploymentId;
    }
    const deploymentId = newDeploymentId();
    try {
      await ctx.deployments.create(key, encode({ deploymentId, requestHash: hash } satisfies RequestMapping));
      return deploymentId;
    } catch {
      // Someone else created it between our get and create: read theirs.
    }
  }
  throw new ConflictError(`request_id ${input.requestId}: could not record the request`);
}

function resolveTargets(input: CreateInput, registry: Registry, now: number): string[] {
  const serves = (id: string): boolean => {
    const a = registry.get(id)!;
    return a.record.environment === input.environment && a.record.apps.includes(input.app);
  };
  if (input.targets.length > 0) {
    input.targets.forEach((id, i) => {
      const a = registry.get(id);
      if (!a) throw new ValidationError(`targets[${i}]`, `agent "${id}" is not registered`);
      if (!serves(id)) throw new ValidationError(`targets[${i}]`, `agent "${id}" does not serve app ${input.app} in environment ${input.environment}`);
    });
    const dead = input.targets.filter((id) => !registry.isLive(registry.get(id)!, now));
    if (dead.length > 0) throw new PreconditionError(`target(s) not live (no recent heartbeat): ${dead.join(", ")}`);
    return input.targets;
  }
  const live = registry.list({ app: input.app, environment: input.environment }).filter((a) => registry.isLive(a, now));
  if (live.length === 0) throw new PreconditionError(`no live agent serves app ${input.app} in environment ${input.environment}`);
  return live.map((a) => a.record.id);
}

async function takeLock(ctx: JsContext, input: CreateInput, deploymentId: string): Promise<void> {
  const key = activeKey(input.app, input.environment);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await ctx.deployments.create(key, deploymentId);
      return;
    } catch {
      // held: by whom?
    }
    const e = await ctx.deployments.get(key);
    if (!e || e.operation !== "PUT") continue;
    const holder = e.string();
    if (holder === deploymentId) return;
    const other = await loadDeployment(ctx, holder);
    if (other && !isTerminalDeployment(other.record.state)) {
      throw new PreconditionError(`deployment ${holder} is still ${other.record.state} for app ${input.app} in environment ${input.environment}`);
    }
    if (!other && Date.now() - e.created.getTime() < ABANDONED_LOCK_MS) {
      throw new PreconditionError(`deployment ${holder} is being created for app ${input.app} in environment ${input.environment}`);
    }
    try {
      await ctx.deployments.update(key, deploymentId, e.revision);
      return;
    } catch {
      // another creator took it over first: look again
    }
  }
  throw new ConflictError(`could not take the lock of ${input.app}/${input.environment}`);
}

export async function createDeployment(
  ctx: JsContext,
  registry: Registry,
  input: CreateInput,
): Promise<DeploymentRecord> {
  const hash = requestHash(input);
  const deploymentId = await claimRequest(ctx, input, hash);
  const existing = await loadDeployment(ctx, deploymentId);
  if (existing) return existing.record;

  const targets = resolveTargets(input, registry, Date.now());
  await takeLock(ctx, input, deploymentId);
  const spec: DeploymentSpec = {
    id: deploymentId,
    requestId: input.requestId,
    requestHash: hash,
    app: input.app,
    environment: input.environment,
    changeset: input.changeset,
    strategy: input.strategy,
    targets,
    requestedBy: input.requestedBy,
  };
  try {
    await appendEvent(ctx, deploymentId, { type: "deployment.created", spec }, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: 0 });
  } catch (err) {
    // A concurrent identical request created it first: that one is ours too.
    if (!(err instanceof ConflictError)) throw err;
  }
  const loaded = await loadDeployment(ctx, deploymentId);
  if (!loaded) throw new ConflictError(`deployment ${deploymentId} was not readable after creation`);
  await saveProjection(ctx, loaded.record, loaded.kvRevision).catch(() => undefined);
  return loaded.record;
}
