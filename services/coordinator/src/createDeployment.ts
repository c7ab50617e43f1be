// CreateDeployment: one request, one deployment, whatever is retried, and a
// refused request writes nothing.
//
// 1. Resolve the targets and the strategy (resolveRequest.ts) and the
//    artifact, and refuse what the environment's policy does not accept
//    (policies.ts) or a frozen environment (freezes.ts). A refusal here
//    writes nothing.
// 2. Together (one round trip): take the (app, environment) lock (KV create
//    of active.<app>.<env>, holding a new deployment id and the request key)
//    and record the request mapping (KV create of req.<sha256(request id)>,
//    holding the same deployment id and the body hash). Only a holder of
//    the mapping (its writer, or a call that adopted it: below) creates the
//    deployment it names.
//    - Both ours: go on to 3.
//    - Mapping ours, lock refused (another non-terminal deployment holds it,
//      or any failure): the mapping is withdrawn (withdrawMapping: a purge
//      of our revision only) and the request refused, unless an identical
//      call adopted the mapping meanwhile (below): then it is answered.
//    - Mapping ours, lock held by the same request key under another
//      deployment id: a concurrent identical call took it and lost the
//      mapping, so that id is never created; claimLock takes the lock over.
//    - Mapping not ours: the request id is recorded (a retry, or a
//      concurrent identical call). Our lock, if taken, is given back; the
//      answer comes from the mapping. The same body hash means "already
//      accepted": answer with that deployment; another hash is
//      ALREADY_EXISTS, and so is another caller's identity (request ids are
//      scoped to who sends them; see below). A mapping whose deployment does
//      not exist yet is finished by this call: take the lock for its
//      deployment id, then ADOPT the mapping (adoptMapping: the same content
//      rewritten by compare-and-set on the revision read), then create. A
//      mapping's creator that was refused withdraws only its own revision,
//      so an adopted mapping survives it and the deployment created from it
//      stays the request's; an adoption after the withdrawal fails on the
//      revision, and the call reads again (no mapping: a new request).
//    Every refusal looks for the mapping first, so a retry of an accepted
//    request is answered, never refused.
// 3. Append deployment.created with expected last subject sequence 0, so it
//    exists at most once (identical calls finishing the same mapping race
//    there, and the loser reads the winner's).
//    An API create (CreateOptions.answerEarly) writes that event into its
//    request mapping in step 2 and answers once the lock and the mapping
//    are stored, then stores the event: the request is acknowledged when
//    both are, and from then on the deployment is never lost or taken
//    over. Until the event is stored, the lock names a deployment that is
//    not stored, and whoever finds it so stores the event from the mapping
//    (acknowledgedCreation): the reconciler's sweep, a create of the same
//    pair (takeLock), a read of the deployment (acknowledgedDeployment:
//    GetDeployment, WatchDeployment, CancelDeployment and the others, from
//    any coordinator), ListDeployments, artifact retention, and a retry of
//    the request.
// A new request costs 2 sequential round trips before its answer (lock ∥
// mapping, then created), an early one 1 (the projection is written by the
// reconciler's first pass, and the created event's time is its own:
// fold.ts). A refused request costs one more (the withdrawal). A lock left
// by an earlier deployment of the pair costs none more: releaseLock leaves
// no delete marker.
// A crash between any two steps leaves state that a retry of the same request
// completes (the mapping then exists: step 2 finishes it) or that expires (a
// lock whose deployment never appeared is taken over after 30 s). A creator
// that crashes after its mapping is written and before it is withdrawn
// leaves the request recorded, as if accepted: a retry finishes it once the
// pair's lock is free.
//
// Who asked is the authenticated identity (grpc/identity.ts), recorded in the
// spec and in the request mapping. It is not in the body hash: the same
// client retrying is the same identity anyway, and a request accepted before
// identities were recorded (a mapping without one) is still answered. A
// different identity re-using a request id gets ALREADY_EXISTS, never the
// other caller's deployment: it did not ask for that deployment, and being
// answered with it would make it believe its own request was recorded while
// the audit log names someone else (request ids are scoped per caller, as
// payment APIs scope idempotency keys per account).
import { randomBytes } from "node:crypto";
import {
  AlreadyExistsError,
  ConflictError,
  COORDINATOR_SOURCE,
  DEPLOYMENTS_BUCKET,
  PairBusyError,
  EnvironmentFrozenError,
  freezeOverrideOf,
  freezeText,
  type FreezeOverride,
  type FreezeRecord,
  type PolicyRecord,
  PreconditionError,
  ACTIVE_FILTER,
  activeKey,
  appendEvent,
  appendMadeEvent,
  DEFAULT_START_LEASE_MS,
  ENVELOPE_BYTES,
  MAX_TARGETS,
  MAX_CORDONED_RECORDED,
  splitProblem,
  splitSpec,
  TARGETS_SOURCE,
  type HeldChunks,
  type DeployEvent,
  dispatchedIdsOf,
  kvLastValues,
  eventBudget,
  EVENTS_MAX_MSG_SIZE,
  maxPayload,
  noteWithin,
  ResourceExhaustedError,
  saveProjection,
  encode,
  foldEvent,
  kvValueBudget,
  parseEvent,
  kvKeySubject,
  kvStreamName,
  isTerminalDeployment,
  loadDeployment,
  makeEvent,
  type Changeset,
  sameIdentity,
  type DeploymentRecord,
  type DeploymentSpec,
  type Identity,
  type IdentitySource,
  type JsContext,
  type RestoredRelease,
} from "../../shared/src/index.js";
import type { KvEntry } from "@nats-io/kv";
import type { ArtifactStore } from "./artifacts/artifactStore.js";
import type { Registry } from "./registry.js";
import { buildCommand } from "./rollout/publishCommand.js";
import { plan } from "./rollout/plan.js";
import { requestHash, requestKeyOf, type CreateInput } from "./requests.js";
import { policyRefusal } from "./policies.js";
import { resolveStrategy, resolveTargets, type ResolvedTargets } from "./resolveRequest.js";

/** A lock whose deployment never appeared is abandoned after this long (a creator that crashed). */
const ABANDONED_LOCK_MS = 30_000;
/** How long a concurrent identical request waits for the winner's deployment to appear. */
const FOLLOW_MS = 5000;
/**
 * The largest created event a create answers early with (its mapping holds
 * a copy, kept as long as the mapping: streams.deploymentsMaxAgeMs). About
 * 700 targets at the longest agent ids; a larger deployment is answered
 * once its created event is stored, one round trip later.
 */
const EARLY_EVENT_MAX_BYTES = 64 * 1024;
/** Tries of the background store of an early create's created event (0.2, 0.4, 0.8, 1.6 s apart) before the sweep is left to store it. */
const EARLY_STORE_TRIES = 5;

/** Time-ordered, so listing keys newest first needs no index: d-<ms base36>-<random>. */
export function newDeploymentId(now = Date.now()): string {
  return `d-${now.toString(36).padStart(9, "0")}-${randomBytes(4).toString("hex")}`;
}

interface RequestMapping {
  deploymentId: string;
  requestHash: string;
  /** Who sent the request; absent in mappings from before identities were recorded. */
  requestedBy?: string;
  requestedByVia?: IdentitySource;
  /**
   * The deployment's created event, in the mapping of a create answered
   * before that event was stored (CreateOptions.answerEarly). While the
   * pair's lock names the deployment and it is not stored, whoever finds
   * it missing stores this event (acknowledgedCreation).
   */
  created?: unknown;
}

/** Value of active.<app>.<env>. */
export interface ActiveLock {
  deploymentId: string;
  requestKey: string;
}

function parseJsonEntry<T extends object>(e: KvEntry | null, keys: (keyof T)[]): T | undefined {
  if (!e || e.operation !== "PUT") return undefined;
  try {
    const v = e.json<T>();
    return v && keys.every((k) => typeof v[k] === "string") ? v : undefined;
  } catch {
    return undefined;
  }
}

export const parseLock = (e: KvEntry | null): ActiveLock | undefined => parseJsonEntry<ActiveLock>(e, ["deploymentId", "requestKey"]);

/** Every (app, environment) lock held now (`filter`: of one app, activeKey(app, "*")): one batched direct get (kvLastValues), no consumer. */
export async function activeLocks(ctx: Pick<JsContext, "jsm" | "deployments">, filter = ACTIVE_FILTER): Promise<ActiveLock[]> {
  const locks: ActiveLock[] = [];
  for (const { value } of await kvLastValues(ctx.jsm, ctx.deployments, DEPLOYMENTS_BUCKET, filter)) {
    try {
      const v = JSON.parse(new TextDecoder().decode(value)) as Partial<ActiveLock> | null;
      if (typeof v?.deploymentId === "string" && typeof v.requestKey === "string") locks.push({ deploymentId: v.deploymentId, requestKey: v.requestKey });
    } catch {
      // not a lock of ours: nothing to sweep
    }
  }
  return locks;
}
const parseMapping = (e: KvEntry | null): RequestMapping | undefined => parseJsonEntry<RequestMapping>(e, ["deploymentId", "requestHash"]);

/** The deployment a request id was accepted as, if it was. */
export async function deploymentOfRequest(ctx: Pick<JsContext, "deployments">, requestId: string): Promise<string | undefined> {
  return parseMapping(await ctx.deployments.get(requestKeyOf(requestId)))?.deploymentId;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `revision`: the lock's, as written (taken) or as read (claimLock takes it over from it). */
type LockOutcome = { kind: "taken"; revision: number } | { kind: "same-request"; holder: ActiveLock; revision: number };

/** `serverNow`: the servers' clock, as the lock ages compared with it are KV created times. */
async function takeLock(ctx: JsContext, input: CreateInput, mine: ActiveLock, fleet: FleetOptions, serverNow: () => number): Promise<LockOutcome> {
  const key = activeKey(input.app, input.environment);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return { kind: "taken", revision: await ctx.deployments.create(key, encode(mine)) };
    } catch {
      // held: by whom?
    }
    const e = await ctx.deployments.get(key);
    if (!e || e.operation !== "PUT") continue;
    const holder = parseLock(e);
    if (holder?.requestKey === mine.requestKey) {
      // This request's own lock. Its creator records the request mapping
      // together with taking it; a lock of ours with no mapping FOLLOW_MS
      // later was left by a creator whose mapping write failed and that
      // could not give the lock back. Taken over like an abandoned lock:
      // otherwise every retry of this request waits on it and times out, for
      // good (the fault suite's seed 7018 saw 45 s of DEADLINE_EXCEEDED).
      const orphaned = serverNow() - e.created.getTime() > FOLLOW_MS && !parseMapping(await ctx.deployments.get(mine.requestKey));
      if (!orphaned) return { kind: "same-request", holder, revision: e.revision };
      try {
        return { kind: "taken", revision: await ctx.deployments.update(key, encode(mine), e.revision) };
      } catch {
        continue; // another retry took it first: look again
      }
    }
    const other = holder ? await loadDeployment(ctx, holder.deploymentId) : undefined;
    if (holder && other) refuseWhileActive(input, holder, other.record);
    // A creation answered before its created event was stored: stored
    // here, and the pair is busy with it (never taken over as abandoned).
    const acknowledged = holder && !other ? await acknowledgedCreation(ctx, holder) : undefined;
    if (holder && acknowledged) refuseWhileActive(input, holder, acknowledged.record);
    if (holder && !other && serverNow() - e.created.getTime() < ABANDONED_LOCK_MS) {
      // Being created (its deployment appears within milliseconds), or held
      // for a moment by a retry of a finished request that gives it back:
      // look again (up to 250 ms in all) before refusing.
      if (attempt < 4) {
        await sleep(25 * (attempt + 1));
        continue;
      }
      throw new PairBusyError(`deployment ${holder.deploymentId} is being created for app ${input.app} in environment ${input.environment}`, holder.deploymentId);
    }
    // A holder that SUCCEEDED whose coordinator died between its finished
    // event and recording the desired release (it does so before giving
    // the lock back): recorded here, before the pair's next deployment can
    // exist, so the desired release never skips it. A failure refuses this
    // request; nothing is written.
    if (other?.record.state === "SUCCEEDED") await fleet.recordDesired?.(other.record);
    // A terminal holder whose last projection write failed (a stream leader
    // lost as it finished) is swept again only while it holds the lock:
    // written here, before the lock is taken from it, or it would lag its
    // stream for good (the fault suite's seed 40127). Best effort: reads
    // catch a lagging projection up anyway.
    if (other && other.record.lastSeq > other.kvLastSeq) await saveProjection(ctx, other.record, other.kvRevision).catch(() => undefined);
    try {
      // terminal, abandoned or unreadable: take it over by compare-and-set
      return { kind: "taken", revision: await ctx.deployments.update(key, encode(mine), e.revision) };
    } catch {
      // another creator took it over first: look again
    }
  }
  throw new ConflictError(`could not take the lock of ${input.app}/${input.environment}; retry`);
}

/** The refusal of a create while the deployment holding the pair's lock is not terminal. */
function refuseWhileActive(input: CreateInput, holder: ActiveLock, other: DeploymentRecord): void {
  if (!isTerminalDeployment(other.state)) {
    throw new PairBusyError(`deployment ${holder.deploymentId} is still ${other.state} for app ${input.app} in environment ${input.environment}`, holder.deploymentId);
  }
}

/**
 * CreateDeployment with validate_only: the checks a create makes before it
 * writes (the artifact, the targets, the strategy, the sizes) and whether
 * another deployment holds the pair, then the deployment it would create,
 * folded here from the created event it would append. Nothing is written,
 * and the request id is neither recorded nor looked up (a retry of an
 * accepted request is answered by the create itself, not by this).
 */
export async function previewDeployment(
  ctx: JsContext,
  registry: Registry,
  artifacts: ArtifactStore,
  input: CreateInput,
  requester: Identity,
  fleet: FleetOptions = {},
): Promise<{ record: DeploymentRecord; cordoned: string[] }> {
  await registry.hearing();
  const now = registry.clock.now();
  refuseByEnvironment(input, fleet);
  const changeset = await resolveChangeset(artifacts, input);
  const targets = resolveTargets(input, registry, now);
  const spec = specOf(input, requester, requestHash(input), newDeploymentId(now), targets, changeset, fleet, await revertTarget(input, fleet));
  checkCreationFits(ctx, spec);
  const holder = parseLock(await ctx.deployments.get(activeKey(input.app, input.environment)));
  const other = holder ? await loadDeployment(ctx, holder.deploymentId) : undefined;
  if (holder && other) refuseWhileActive(input, holder, other.record);
  const event = { ...makeEvent(spec.id, { type: "deployment.created", spec }), time: new Date(now).toISOString() };
  const folded = foldEvent(undefined, { seq: 1, time: event.time, source: COORDINATOR_SOURCE, event });
  if (!folded.record) throw new Error(`the deployment could not be folded from its created event (${folded.ignored ?? "?"})`);
  // What each target would go from (as nomad job plan shows a diff): its
  // release of the app now, from the registry.
  for (const [id, t] of Object.entries(folded.record.targets)) {
    if (t.state !== "PENDING") continue;
    const current = registry.get(id)?.record.currentReleases[input.app];
    t.message = current ? `now on ${current}` : `no release of ${input.app} installed`;
  }
  return { record: folded.record, cordoned: targets.cordoned };
}

/**
 * Frees active.<app>.<env> when `deploymentId` holds it, leaving no trace: its
 * revisions up to the one read are purged from the bucket's stream, where a
 * KV delete would leave a marker behind for ever. A marker costs every later
 * deployment of the pair 2 more round trips to take the lock (KV create
 * fails on it, reads it, then updates it: 3 in all, 1 with no marker), and
 * every sweep reads every marker ever left (ACTIVE_FILTER lists them all). A
 * purge bounded by sequence is a compare-and-set too: a lock taken over
 * meanwhile has a later sequence and stays. Returns whether it was held.
 *
 * With `revision`, the lock's revision naming `deploymentId` as its creator
 * wrote it (Created.lockRevision), there is nothing to read: the purge up to
 * it frees the lock if it is still that one, and leaves a later one. Then
 * "held" is whether that revision was still stored, which a lock taken over
 * after it (history 5) leaves true; a freed lock's convergence check
 * (FinishOptions.onLockReleased) runs once for nothing then.
 */
export async function releaseLock(ctx: JsContext, key: string, deploymentId: string, revision?: number): Promise<boolean> {
  if (revision !== undefined) {
    const r = await ctx.jsm.streams.purge(kvStreamName(DEPLOYMENTS_BUCKET), { filter: kvKeySubject(DEPLOYMENTS_BUCKET, key), seq: revision + 1 });
    return r.purged > 0;
  }
  const e = await ctx.deployments.get(key);
  if (parseLock(e)?.deploymentId !== deploymentId) return false;
  await ctx.jsm.streams.purge(kvStreamName(DEPLOYMENTS_BUCKET), { filter: kvKeySubject(DEPLOYMENTS_BUCKET, key), seq: e!.revision + 1 });
  return true;
}

/**
 * Removes a request mapping this call wrote (KV create, at `revision`) for a
 * request that was then refused: a refused request leaves no trace (the
 * corrected request with the same id must be accepted). Like releaseLock, a
 * purge bounded by sequence, never a KV delete (its marker would stay): it
 * removes our revision only, so a mapping adopted meanwhile (adoptMapping,
 * a later revision) survives, and with it the deployment its adopter creates.
 */
export async function withdrawMapping(ctx: Pick<JsContext, "jsm">, reqKey: string, revision: number): Promise<void> {
  await ctx.jsm.streams.purge(kvStreamName(DEPLOYMENTS_BUCKET), { filter: kvKeySubject(DEPLOYMENTS_BUCKET, reqKey), seq: revision + 1 });
}

/**
 * Makes a request mapping read as `entry` this call's own before it creates
 * the deployment the mapping names: the same content written again by
 * compare-and-set on the revision read. Its creator may be about to
 * withdraw it (withdrawMapping: its lock was refused, ours was not); that
 * purge stops at the creator's revision, so the adopted one stays, and a
 * later retry of the request finds the deployment created from it. Fails
 * (false) when the revision read is not the last any more: withdrawn, or
 * adopted by another call first; read it again.
 */
export async function adoptMapping(ctx: Pick<JsContext, "deployments">, entry: KvEntry): Promise<boolean> {
  try {
    await ctx.deployments.update(entry.key, entry.value, entry.revision);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the lock name `mine.deploymentId`, for a caller that holds the
 * request's mapping naming it (created or adopted). A lock of the same
 * request naming another deployment id was taken by a concurrent identical
 * call whose mapping create failed: that deployment id is never created
 * (only a holder of the mapping creates), so the lock is taken over by
 * compare-and-set. Throws when refused, like takeLock. Returns the revision
 * of the lock naming our deployment.
 */
async function claimLock(ctx: JsContext, input: CreateInput, mine: ActiveLock, fleet: FleetOptions, serverNow: () => number, lock: LockOutcome): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    if (lock.kind === "taken" || lock.holder.deploymentId === mine.deploymentId) return lock.revision;
    try {
      return await ctx.deployments.update(activeKey(input.app, input.environment), encode(mine), lock.revision);
    } catch {
      // changed since it was read (given back, or claimed by another holder of the mapping): look again
    }
    if (attempt >= 4) throw new ConflictError(`could not take the lock of ${input.app}/${input.environment} for request_id ${input.requestId}; retry`);
    lock = await takeLock(ctx, input, mine, fleet, serverNow);
  }
}

/**
 * Appends deployment.created (at most once) and returns the deployment. Its
 * projection is not written here: the reconciler this record is handed to
 * writes it in its first pass (ListDeployments finds a deployment without
 * one through its lock), so the answer waits one round trip less.
 *
 * A deployment too large for one event (targetChunks.ts) first writes its
 * target chunks on deploy.evt.<id>.targets, together (one round trip), each
 * with a Nats-Msg-Id of this attempt (a publish retried after a lost reply
 * is dropped by the server); then the created event, listing the chunks'
 * sequences, is the commit point: before it the deployment does not exist
 * (reads, the lock's holder check and every retry see no deployment). A
 * creator that dies half-way leaves chunks no created event lists, which the
 * fold ignores; the retry of the request (its mapping is recorded) writes
 * its own chunks and created event, and of two such writers only one
 * created event is stored (expected last subject sequence 0).
 *
 * `serverNow`: the servers' clock now; the created event's time is the
 * deployment's createdAt, so it is on the servers' clock like every other
 * time of the deployment.
 */
async function materialize(ctx: JsContext, spec: DeploymentSpec, serverNow: number): Promise<Created> {
  const split = splitSpec(spec, eventBudget(ctx.nc));
  const held: HeldChunks = new Map();
  let created = split.created;
  if (split.chunks.length > 0) {
    const attempt = randomBytes(4).toString("hex");
    const seqs = await Promise.all(
      split.chunks.map((c, i) => appendEvent(ctx, spec.id, c, { source: TARGETS_SOURCE, msgId: `${spec.id}.targets.${attempt}.${i}` })),
    );
    split.chunks.forEach((c, i) => held.set(seqs[i]!, { agentIds: c.agentIds, ...(c.offline ? { offline: c.offline } : {}), ...(c.current ? { current: c.current } : {}) }));
    created = { ...split.created, targetChunks: seqs };
  }
  return storeCreated(ctx, createdEvent(ctx, created, held, serverNow), held);
}

/** The created event of `spec` (its target chunks, if any, stored already and in `held`), with its first dispatch. */
function createdEvent(ctx: Pick<JsContext, "nc">, spec: DeploymentSpec, held: HeldChunks, serverNow: number): CreatedEvent {
  const time = new Date(serverNow).toISOString();
  const event = { ...makeEvent(spec.id, { type: "deployment.created", spec }), time } as CreatedEvent;
  const dispatched = firstDispatch(event, held, serverNow, eventBudget(ctx.nc));
  return dispatched ? { ...event, dispatched } : event;
}

/**
 * Appends `event` at most once (expected last subject sequence 0) and
 * returns the deployment: folded from the event alone when ours, read when
 * another writer's was stored first (a concurrent identical request, a
 * retry, or whoever stored an acknowledged creation: acknowledgedCreation).
 */
async function storeCreated(ctx: ReadWriteCtx, event: CreatedEvent, held: HeldChunks): Promise<Created> {
  let seq = 0;
  try {
    seq = await appendMadeEvent(ctx, event, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: 0 });
  } catch (err) {
    // Created already (a concurrent identical request, or a retry): that one is ours too.
    if (!(err instanceof ConflictError)) throw err;
  }
  if (seq > 0) {
    // Ours: the created event is the deployment's first, so folding it alone
    // (with the chunks it lists, in hand) is the record (its createdAt is
    // the event's own time: fold.ts), with no round trip; loadDeployment
    // would take 3 (KV get, last sequence, next event).
    return { record: foldCreated(event, seq, held), kvRevision: 0 };
  }
  const loaded = await loadDeployment(ctx, event.deploymentId);
  if (!loaded) throw new ConflictError(`deployment ${event.deploymentId} was not readable after creation; retry`);
  return { record: loaded.record, kvRevision: loaded.kvRevision };
}

/** The deployment as its created event alone makes it, stored at `seq` (0: not stored yet, the answer of an early create). */
function foldCreated(event: CreatedEvent, seq: number, held: HeldChunks): DeploymentRecord {
  const streamTime = new Date().toISOString(); // unused by a created event's fold
  const folded = foldEvent(undefined, { seq, time: streamTime, source: COORDINATOR_SOURCE, event }, held);
  if (!folded.record) throw new ConflictError(`deployment ${event.deploymentId} could not be folded from its created event (${folded.ignored ?? "?"}); retry`);
  return folded.record;
}

type CreatedEvent = Extract<DeployEvent, { type: "deployment.created" }>;

/** What storing a created event and reading a deployment take (the reads' contexts have no nc: event budgets then assume the defaults). */
type ReadWriteCtx = Pick<JsContext, "js" | "jsm" | "deployments"> & Partial<Pick<JsContext, "nc">>;

/**
 * The created event a create may answer with before storing it
 * (CreateOptions.answerEarly): one that lists no target chunks, sizes
 * within EARLY_EVENT_MAX_BYTES, and fits its request mapping; otherwise
 * undefined, and the create answers after storing it.
 */
function earlyCreatedEvent(ctx: Pick<JsContext, "nc">, spec: DeploymentSpec, serverNow: number): CreatedEvent | undefined {
  const split = splitSpec(spec, eventBudget(ctx.nc));
  if (split.chunks.length > 0) return undefined;
  const event = createdEvent(ctx, split.created, new Map(), serverNow);
  // Whether its mapping fits a KV value is checked where the mapping is made.
  return encode(event).length <= EARLY_EVENT_MAX_BYTES ? event : undefined;
}

/** The early creates of this process whose created event is being stored, by deployment id. */
const storing = new Map<string, Promise<Created>>();

/**
 * Stores an early create's created event after its answer, trying again
 * for a few seconds (a leader election, a reconnect). Given up, the event
 * stays in the request mapping, and the lock names the deployment: the
 * next sweep, create of the pair or read of the deployment stores it
 * (acknowledgedCreation).
 */
function storeEarly(ctx: JsContext, event: CreatedEvent): Promise<Created> {
  const id = event.deploymentId;
  const stored = (async (): Promise<Created> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await storeCreated(ctx, event, new Map());
      } catch (err) {
        if (attempt >= EARLY_STORE_TRIES) throw err;
        await sleep(100 * 2 ** attempt);
      }
    }
  })();
  storing.set(id, stored);
  // Handled here too: a caller that never awaits it ends no process.
  stored.catch(() => undefined).finally(() => storing.delete(id));
  return stored;
}

/** The deployment, once this process's own early store of it has settled; undefined when there is none or it gave up. */
async function storedHere(id: string): Promise<Created | undefined> {
  return storing.get(id)?.catch(() => undefined);
}

/** Settles once every early create of this process has stored its created event or given up (a coordinator's close waits for it). */
export async function earlyStoresSettled(): Promise<void> {
  await Promise.allSettled([...storing.values()]);
}

/**
 * The deployment `lock` names, stored now if it was acknowledged before its
 * created event was (an early create whose coordinator died, or could not
 * reach NATS, before it stored it): its request mapping names it and holds
 * the event. Stored at most once like any created event; undefined when
 * the mapping holds none (the lock of a creator that never answered: see
 * takeLock).
 */
export async function acknowledgedCreation(ctx: ReadWriteCtx, lock: ActiveLock): Promise<Created | undefined> {
  const done = await storedHere(lock.deploymentId);
  if (done) return done;
  const mapping = parseMapping(await ctx.deployments.get(lock.requestKey));
  if (mapping?.deploymentId !== lock.deploymentId || mapping.created === undefined) return undefined;
  let event: DeployEvent;
  try {
    event = parseEvent(JSON.stringify(mapping.created));
  } catch {
    return undefined; // not ours to store
  }
  if (event.type !== "deployment.created" || event.deploymentId !== lock.deploymentId) return undefined;
  return storeCreated(ctx, event, new Map());
}

/**
 * A deployment a read did not find (GetDeployment, WatchDeployment,
 * CancelDeployment, …) that an early create acknowledged: stored now, so
 * a client that asks for it right after its answer, from any coordinator,
 * finds it. Costs a look at every lock (one batched direct get), and only
 * when the deployment is not found.
 */
export async function acknowledgedDeployment(ctx: ReadWriteCtx, id: string): Promise<Created | undefined> {
  const done = await storedHere(id);
  if (done) return done;
  const lock = (await activeLocks(ctx)).find((l) => l.deploymentId === id);
  return lock ? acknowledgedCreation(ctx, lock) : undefined;
}

/**
 * The targets the reconciler's first pass would dispatch (rollout/plan.ts,
 * on the fold of `event` alone, at the creation's time), written into the
 * created event instead of a targets.dispatched after it: one stored event
 * and one round trip less before the first command (fan-out 10, traced: 60
 * messages to 59). Only the first batch, and only when it is the plan's
 * first decision (not behind a deployment.started) and the event with it
 * stays within `budget`; whatever else there is to decide, the reconciler
 * decides, as before.
 */
function firstDispatch(event: CreatedEvent, held: HeldChunks, serverNow: number, budget: number): string[] | undefined {
  const rec = foldEvent(undefined, { seq: 1, time: event.time, source: COORDINATOR_SOURCE, event }, new Map(held)).record;
  if (!rec) return undefined;
  const first = plan(rec, { now: serverNow, lastHeartbeat: () => undefined, agentLiveMs: 0, applyTimeoutGraceMs: 0, eventBudgetBytes: budget })[0];
  const ids = first ? dispatchedIdsOf(first) : [];
  if (ids.length === 0) return undefined;
  return encode({ ...event, dispatched: ids }).length <= budget ? ids : undefined;
}

/** The changeset with its artifact's size, or FAILED_PRECONDITION when the artifact is not stored. */
async function resolveChangeset(artifacts: ArtifactStore, input: CreateInput): Promise<Changeset> {
  const a = input.changeset.artifact;
  if (!a) return { version: input.changeset.version };
  const stored = await artifacts.require(input.app, a.name, a.digest, "changeset.artifact");
  return { version: input.changeset.version, artifact: { name: a.name, digest: a.digest, size: stored.size } };
}

export interface Created {
  record: DeploymentRecord;
  /** KV revision of the record's projection; 0 when none is stored yet (a deployment this call created). */
  kvRevision: number;
  /**
   * The revision of the (app, environment) lock naming the deployment, when
   * this call wrote or found it: the finish gives the lock back by a purge
   * bounded by it, with no read first (releaseLock).
   */
  lockRevision?: number;
  /**
   * An early create (CreateOptions.answerEarly): `record` is folded from
   * its created event before the event is stored, and this settles with
   * the deployment once it is stored (Reconciler.launch waits for it).
   */
  stored?: Promise<Created>;
}

export interface CreateOptions {
  /**
   * Answer once the lock and the request mapping are stored, with the
   * created event in the mapping, and store the event after the answer:
   * one sequential round trip before the answer instead of two. For the
   * API's creates (a client waits on them), never for a deployment with
   * strategy.auto_revert (its release to revert to is read once the lock is
   * ours) or one too large for an early answer (earlyCreatedEvent).
   */
  answerEarly?: boolean;
}

/** What the fleet's desired releases need from a creation (releases/): both optional. */
export interface FleetOptions {
  /** Whether convergence is on for an environment (rollout.convergenceOff); absent: on. Recorded with offline targets (spec.convergeOffline). */
  convergence?: (environment: string) => boolean;
  /** Records the desired release a SUCCEEDED deployment made (releases/recordDesiredRelease.ts), for a lock taken over from one. */
  recordDesired?: (rec: DeploymentRecord) => Promise<unknown>;
  /** The desired release of a pair, read now (strategy.auto_revert records it as the release to revert to). */
  desiredRelease?: (app: string, environment: string) => Promise<RestoredRelease | undefined>;
  /** The environment's freeze in force now (freezes.ts); absent: nothing is ever frozen. */
  frozen?: (environment: string) => FreezeRecord | undefined;
  /** The policies a deployment of the app to the environment must satisfy (policies.ts Policies.applying); absent: none. */
  policy?: (environment: string, app: string) => PolicyRecord[];
}

/**
 * What the environment's policy refuses (policies.ts policyRefusal), then
 * the freeze that refuses this creation, if any: its environment is frozen,
 * and the request neither restores a release (RollbackRelease, an automatic
 * revert) nor converges an agent, nor overrides the freeze with a reason.
 * Checked with the other refusals of step 1, so a retry of a request
 * accepted before the freeze is still answered.
 */
function refuseByEnvironment(input: CreateInput, fleet: FleetOptions): void {
  // The environment's policy first: an override of a freeze is no way around it.
  const refused = policyRefusal(input, fleet.policy?.(input.environment, input.app) ?? []);
  if (refused !== undefined) throw new PreconditionError(refused);
  const f = freezeOn(input, fleet);
  if (!f || input.freezeOverride !== undefined) return;
  throw new EnvironmentFrozenError(
    `environment ${input.environment} is ${freezeText(f)}; rollbacks and convergence still run; to deploy anyway give freeze_override_reason (deployctl deploy --override-freeze "<why>"), which is recorded with the deployment`,
    input.environment,
  );
}

/** `requester`: the authenticated identity of the caller (never from the request: grpc/identity.ts). */
export async function createDeployment(
  ctx: JsContext,
  registry: Registry,
  artifacts: ArtifactStore,
  input: CreateInput,
  requester: Identity,
  fleet: FleetOptions = {},
  opts: CreateOptions = {},
): Promise<Created> {
  // Targets are picked from who is live: not before the agents asked after a reconnect have answered.
  await registry.hearing();
  const hash = requestHash(input);
  const reqKey = requestKeyOf(input.requestId);
  const lockKey = activeKey(input.app, input.environment);
  const serverNow = (): number => registry.clock.now();
  /**
   * FOLLOW_MS counts from the first look that needs another, not from the
   * call's start: a create sent while NATS was unreachable behind the
   * coordinator spent its first round trips' 5 s timeouts, and answered
   * ABORTED at once although NATS was back (test/deployctl-retry.test.ts).
   * NATS still down, the next look fails (UNAVAILABLE) instead.
   */
  let followUntil: number | undefined;
  const followOver = (): boolean => Date.now() > (followUntil ??= Date.now() + FOLLOW_MS);
  /** Waits before another look, or gives up with a retryable error once FOLLOW_MS is spent. */
  const follow = async (attempt: number, what: string): Promise<void> => {
    if (followOver()) throw new ConflictError(`request_id ${input.requestId} ${what}; retry`);
    await sleep(Math.min(50 * (attempt + 1), 250));
  };
  /** The answer for a request already accepted (step 2, mapping not ours); undefined when its id is not recorded. */
  const accepted = async (): Promise<Created | undefined> => {
    /** The deployment whose lock this call took for a mapping it then could not adopt. */
    let took: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const entry = await ctx.deployments.get(reqKey);
      const mapping = parseMapping(entry);
      if (took !== undefined && mapping?.deploymentId !== took) {
        // Withdrawn by its refused creator before we could adopt it: nobody
        // can create that deployment now (creating takes the mapping).
        await releaseLock(ctx, lockKey, took).catch(() => undefined);
        took = undefined;
      }
      if (!mapping || !entry) return undefined;
      if (mapping.requestHash !== hash) {
        throw new AlreadyExistsError(`request_id ${input.requestId} was already used for a different request (deployment ${mapping.deploymentId})`);
      }
      if (mapping.requestedBy !== undefined && mapping.requestedByVia !== undefined && !sameIdentity({ name: mapping.requestedBy, via: mapping.requestedByVia }, requester)) {
        throw new AlreadyExistsError(`request_id ${input.requestId} was already used by another caller (deployment ${mapping.deploymentId}); choose another request_id`);
      }
      const existing = await loadDeployment(ctx, mapping.deploymentId);
      if (existing) return existing;
      // Acknowledged early and not stored yet: the event answered, not one made again.
      const holder = mapping.created === undefined ? undefined : parseLock(await ctx.deployments.get(lockKey));
      const acknowledged = holder?.deploymentId === mapping.deploymentId ? await acknowledgedCreation(ctx, holder) : undefined;
      if (acknowledged) return acknowledged;
      // Its creator crashed after recording the request, or is creating it
      // now, or was refused the lock and is withdrawing the mapping: finish
      // the job. The lock first, then adopt the mapping: refused here, this
      // call has written nothing and the creator's withdrawal leaves no
      // trace; adopted, no withdrawal can remove it.
      if (attempt > 0 && followOver()) throw new ConflictError(`request_id ${input.requestId} is being created concurrently; retry`);
      const changeset = await resolveChangeset(artifacts, input);
      const targets = resolveTargets(input, registry, serverNow());
      const mine = { deploymentId: mapping.deploymentId, requestKey: reqKey };
      const lock = await takeLock(ctx, input, mine, fleet, serverNow);
      if (!(await adoptMapping(ctx, entry))) {
        // Withdrawn (the lock taken is given back on the next look), or
        // adopted by another call first (its deployment: look again).
        if (lock.kind === "taken") took = mine.deploymentId;
        continue;
      }
      const lockRevision = await claimLock(ctx, input, mine, fleet, serverNow, lock);
      const revertTo = await revertTarget(input, fleet);
      const created = await materialize(ctx, specOf(input, requester, hash, mapping.deploymentId, targets, changeset, fleet, revertTo), serverNow());
      return { ...created, lockRevision };
    }
  };
  for (let attempt = 0; ; attempt++) {
    // 1. Resolve: every refusal looks for the request id first, so a retry
    // of an accepted request is answered, never refused.
    const mine: ActiveLock = { deploymentId: newDeploymentId(serverNow()), requestKey: reqKey };
    let changeset: Changeset;
    let targets: ResolvedTargets;
    let early: CreatedEvent | undefined;
    try {
      changeset = await resolveChangeset(artifacts, input);
      refuseByEnvironment(input, fleet);
      targets = resolveTargets(input, registry, serverNow());
      // The release to revert to is read again once the lock is ours (a
      // deployment of the pair may succeed in between); this one sizes the event.
      const spec = specOf(input, requester, hash, mine.deploymentId, targets, changeset, fleet, await revertTarget(input, fleet));
      checkCreationFits(ctx, spec);
      if (opts.answerEarly && !input.strategy.autoRevert) early = earlyCreatedEvent(ctx, spec, serverNow());
    } catch (err) {
      const answer = await accepted();
      if (answer) return answer;
      throw err;
    }
    // 2. The lock and the request mapping, together: one round trip for a
    // new request (the paced API bench's p99 is the goal).
    let mapping: RequestMapping = { deploymentId: mine.deploymentId, requestHash: hash, requestedBy: requester.name, requestedByVia: requester.via };
    if (early) {
      const withEvent = { ...mapping, created: early };
      if (encode(withEvent).length <= kvValueBudget(ctx.nc)) mapping = withEvent;
      else early = undefined;
    }
    const [lock, recorded] = await Promise.allSettled([takeLock(ctx, input, mine, fleet, serverNow), ctx.deployments.create(reqKey, encode(mapping))]);
    if (recorded.status === "fulfilled") {
      // The request is ours to create, once the lock names our deployment.
      let lockRevision: number;
      try {
        if (lock.status === "rejected") throw lock.reason;
        lockRevision = await claimLock(ctx, input, mine, fleet, serverNow, lock.value);
      } catch (err) {
        // Refused: withdraw the mapping. An identical call that got the
        // lock may have adopted it meanwhile: then the request is accepted
        // after all, and answered.
        await withdrawMapping(ctx, reqKey, recorded.value);
        const answer = await accepted();
        if (answer) return answer;
        throw err;
      }
      // 3. Create. Early: the answer now, from the event the mapping holds;
      // the event is stored after it (the lock names the deployment, so
      // whoever finds it missing stores it: acknowledgedCreation).
      if (early) return { record: foldCreated(early, 0, new Map()), kvRevision: 0, lockRevision, stored: storeEarly(ctx, early) };
      const created = await materialize(ctx, specOf(input, requester, hash, mine.deploymentId, targets, changeset, fleet, await revertTarget(input, fleet)), serverNow());
      return { ...created, lockRevision };
    }
    // The request id is recorded already: a retry of a request accepted
    // (running, or finished: its lock was free and is given back) or being
    // created by a concurrent identical call (whose lock ours may be: it
    // claims it). Answered from the mapping.
    if (lock.status === "fulfilled" && (lock.value.kind === "taken" || lock.value.holder.deploymentId === mine.deploymentId)) await releaseLock(ctx, lockKey, mine.deploymentId).catch(() => undefined);
    const answer = await accepted();
    if (answer) return answer;
    if (lock.status === "rejected") throw lock.reason;
    // Not recorded after all (the create failed otherwise, or the mapping
    // was withdrawn since): try again, for a while.
    await follow(attempt, "could not be recorded");
  }
}

/** With strategy.auto_revert: the pair's desired release now, which a FAILED deployment's changed targets are brought back to. */
async function revertTarget(input: CreateInput, fleet: FleetOptions): Promise<RestoredRelease | undefined> {
  if (!input.strategy.autoRevert) return undefined;
  return fleet.desiredRelease?.(input.app, input.environment);
}

/**
 * Every message a creation writes, sized before the lock or anything else
 * is written (it used to fail after the lock and the request mapping, so
 * every retry of the request failed too): the created event and the target
 * chunks (targetChunks.ts: what still grows with the targets is the number
 * of chunks), and a command (one per target: the changeset and the longest
 * agent id). The request's fields are bounded by validation (requests.ts),
 * so none of this fails on a default server; it does on one whose
 * max_payload is set very low, and then says which limit.
 */
export function checkCreationFits(ctx: Pick<JsContext, "nc">, spec: DeploymentSpec): void {
  const limits = `(DEPLOY_EVENTS max_msg_size ${EVENTS_MAX_MSG_SIZE}, server max_payload ${maxPayload(ctx.nc)})`;
  if (spec.targets.length > MAX_TARGETS) {
    throw new ResourceExhaustedError(`targets: the request resolves to ${spec.targets.length} targets, over the ${MAX_TARGETS} a deployment may have; narrow it with a selector`);
  }
  const budget = eventBudget(ctx.nc);
  const problem = splitProblem(splitSpec(spec, budget), budget);
  if (problem) throw new ResourceExhaustedError(`targets: the deployment of ${spec.targets.length} target(s) cannot be recorded: ${problem} ${limits}`);
  const longest = spec.targets.reduce((a, b) => (b.length > a.length ? b : a), "");
  const command = encode(buildCommand(spec, longest, DEFAULT_START_LEASE_MS, true)).length;
  const commandBudget = maxPayload(ctx.nc) - ENVELOPE_BYTES;
  if (command > commandBudget) {
    throw new ResourceExhaustedError(`changeset: a command would be ${command} bytes, over the ${commandBudget} bytes a message may take (server max_payload ${maxPayload(ctx.nc)})`);
  }
}

function specOf(
  input: CreateInput,
  requester: Identity,
  hash: string,
  id: string,
  resolved: ResolvedTargets,
  changeset: Changeset,
  fleet: FleetOptions,
  revertTo: RestoredRelease | undefined,
): DeploymentSpec {
  const offline = Object.keys(resolved.offline).length;
  const current = Object.keys(resolved.current).length;
  return {
    id,
    requestId: input.requestId,
    requestHash: hash,
    app: input.app,
    environment: input.environment,
    changeset,
    // Percentages of the targets deployed to: the offline and current ones are skipped.
    strategy: resolveStrategy(input.strategy, resolved.targets.length - offline - current),
    targets: resolved.targets,
    requestedBy: requester.name,
    requestedByVia: requester.via,
    // A client's note is at most MAX_NOTE_LENGTH (requests.ts); one the coordinator made is cut to it.
    ...(input.note ? { requestedByNote: noteWithin(input.note) } : {}),
    ...(input.selector ? { selector: input.selector.text } : {}),
    selection: input.selector ? "selector" : input.targets.length > 0 ? "targets" : "all",
    ...(offline > 0 ? { offlineTargets: resolved.offline, convergeOffline: fleet.convergence?.(input.environment) ?? true } : {}),
    ...(current > 0 ? { currentTargets: resolved.current } : {}),
    ...(resolved.cordoned.length > 0 ? { cordonedLeftOut: { ids: resolved.cordoned.slice(0, MAX_CORDONED_RECORDED), count: resolved.cordoned.length } } : {}),
    ...(input.convergesTo ? { convergesTo: input.convergesTo } : {}),
    ...(revertTo ? { revertTo } : {}),
    ...(input.reverts ? { reverts: input.reverts } : {}),
    ...(input.restores ? { restores: input.restores } : {}),
    ...(input.promotedFrom ? { promotedFrom: input.promotedFrom } : {}),
    ...freezeOverrideFor(input, fleet),
  };
}

/** The freeze in force that applies to this creation: none to one that restores a release or converges an agent. */
function freezeOn(input: CreateInput, fleet: FleetOptions): FreezeRecord | undefined {
  return input.restores || input.convergesTo ? undefined : fleet.frozen?.(input.environment);
}

/** spec.freezeOverride: recorded only when the request overrode a freeze in force (an override of nothing records nothing). */
function freezeOverrideFor(input: CreateInput, fleet: FleetOptions): { freezeOverride?: FreezeOverride } {
  const f = input.freezeOverride === undefined ? undefined : freezeOn(input, fleet);
  return f ? { freezeOverride: freezeOverrideOf(input.freezeOverride!, f) } : {};
}
