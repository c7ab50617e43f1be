// The layout of a deployment's projection in KV (deploy_deployments).
//
// Up to SHARD_TARGETS targets (fewer on a server with a small max_payload:
// shardTargetsFor): one value under the deployment's id, the whole record,
// as it always was. Above: the same key holds a summary (the
// record without its targets, and the spec without its target list and
// offline targets) that names the KV revision of each shard it goes with;
// shard.<id>.<n> holds targets n*size.. of the rollout order with
// their records. The summary is the commit point: a reader gets it, then
// each shard at the revision it names, so it reads one consistent record
// even while a writer is replacing shards (KV keeps 5 revisions a key).
import { DEPLOYMENT_SCHEMA } from "./names.js";
import type { DeploymentRecord, TargetRecord } from "./fold.js";

/**
 * Targets per shard. A target's record is ~150 bytes of JSON (a SKIPPED one
 * with its "offline at creation" message; a SUCCEEDED one with its times):
 * ~150 KB a shard, well under the 1 MiB of a default max_payload, and 100
 * shards for 100,000 targets. A shard whose targets carry unusually long
 * messages can still exceed the server's limit: that projection is then not
 * stored (reads fold the stream: exact, slower), and the coordinator says so.
 */
export const SHARD_TARGETS = 1000;
/**
 * Room a shard gives each target, for a server whose max_payload is small:
 * 2.5-3 times a usual target record, so a shard of targets with long
 * messages still fits.
 */
const SHARD_BYTES_PER_TARGET = 512;

/** Targets per shard on a server that takes KV values of `budget` bytes: SHARD_TARGETS, fewer when max_payload is small. */
export function shardTargetsFor(budget: number): number {
  return Math.max(1, Math.min(SHARD_TARGETS, Math.floor(budget / SHARD_BYTES_PER_TARGET)));
}
export const SHARD_SCHEMA = "deploy.deployment.shard.v1";

/** The value of shard.<id>.<n>. */
export interface ShardValue {
  schema: typeof SHARD_SCHEMA;
  deploymentId: string;
  index: number;
  /** The targets of the shard, in rollout order, and their records (same order). */
  ids: string[];
  records: TargetRecord[];
  /** Those of them offline at creation (spec.offlineTargets). */
  offline?: Record<string, string>;
  /** Those of them already current at creation (spec.currentTargets). */
  current?: Record<string, string>;
}

/** The value under a sharded deployment's id. */
export type ProjectionSummary = DeploymentRecord & { shards: { size: number; revisions: number[] } };

export const isSharded = (rec: DeploymentRecord, size = SHARD_TARGETS): boolean => rec.spec.targets.length > size;

/** The shards of `rec` of `size` targets each, in order (only for isSharded records). */
export function shardsOf(rec: DeploymentRecord, size = SHARD_TARGETS): ShardValue[] {
  const out: ShardValue[] = [];
  const ids = rec.spec.targets;
  /** The entries of `all` for the ids of `part`, or undefined when none. */
  const pick = (all: Record<string, string> | undefined, part: string[]): Record<string, string> | undefined => {
    if (!all) return undefined;
    const some: Record<string, string> = {};
    let n = 0;
    for (const id of part) {
      if (Object.hasOwn(all, id)) {
        some[id] = all[id]!;
        n++;
      }
    }
    return n > 0 ? some : undefined;
  };
  for (let i = 0, index = 0; i < ids.length; i += size, index++) {
    const part = ids.slice(i, i + size);
    const offline = pick(rec.spec.offlineTargets, part);
    const current = pick(rec.spec.currentTargets, part);
    out.push({
      schema: SHARD_SCHEMA,
      deploymentId: rec.spec.id,
      index,
      ids: part,
      records: part.map((id) => rec.targets[id]!),
      ...(offline ? { offline } : {}),
      ...(current ? { current } : {}),
    });
  }
  return out;
}

/** The summary of `rec` that goes with shards at `revisions`. */
export function projectionSummaryOf(rec: DeploymentRecord, revisions: number[], size = SHARD_TARGETS): ProjectionSummary {
  const { targets: _ids, offlineTargets: _offline, currentTargets: _current, ...spec } = rec.spec;
  return { ...rec, spec: { ...spec, targets: [] }, targets: {}, shards: { size, revisions } };
}

/** The record a summary and its shards (in order) make, or why they do not make one. */
export function assembleProjection(summary: ProjectionSummary, shards: unknown[]): DeploymentRecord | string {
  const targetIds: string[] = [];
  const targets: Record<string, TargetRecord> = {};
  const offline: Record<string, string> = {};
  const current: Record<string, string> = {};
  let anyOffline = false;
  let anyCurrent = false;
  for (const [i, v] of shards.entries()) {
    const s = v as Partial<ShardValue> | null;
    if (s?.schema !== SHARD_SCHEMA || s.deploymentId !== summary.spec.id || s.index !== i || !Array.isArray(s.ids) || !Array.isArray(s.records) || s.ids.length !== s.records.length) {
      return `shard ${i} is not shard ${i} of ${summary.spec.id}`;
    }
    s.ids.forEach((id, k) => {
      targetIds.push(id);
      targets[id] = s.records![k]!;
    });
    if (s.offline) {
      Object.assign(offline, s.offline);
      anyOffline = true;
    }
    if (s.current) {
      Object.assign(current, s.current);
      anyCurrent = true;
    }
  }
  const { shards: _shards, ...rec } = summary;
  return {
    ...rec,
    spec: { ...rec.spec, targets: targetIds, ...(anyOffline ? { offlineTargets: offline } : {}), ...(anyCurrent ? { currentTargets: current } : {}) },
    targets,
  };
}

/** Whether a KV value is a usable projection (ours: a shape check suffices) and whether it is a sharded one's summary. */
export function projectionShape(v: unknown): "whole" | "summary" | undefined {
  const r = v as Partial<ProjectionSummary> | null;
  if (r?.schema !== DEPLOYMENT_SCHEMA || typeof r.lastSeq !== "number" || typeof r.targets !== "object") return undefined;
  if (r.shards === undefined) return "whole";
  return Array.isArray(r.shards.revisions) ? "summary" : undefined;
}
