// Domain records → API messages.
import {
  DEFAULT_MAX_PAUSE_MS,
  TARGET_STATES,
  canaryTargetsOf,
  dispatchedIdsOf,
  countTargets,
  isTerminalDeployment,
  type RestoredRelease,
  requesterOf,
  type DeploymentRecord,
  type StoredEvent,
  type TargetState,
  type CordonRecord,
  type FreezeOverride,
  type FreezeRecord,
  type PolicyRecord,
} from "../../../shared/src/index.js";
import type { EnvironmentFreeze } from "../../../shared/src/gen/deploy/v1/EnvironmentFreeze.js";
import type { EnvironmentPolicy } from "../../../shared/src/gen/deploy/v1/EnvironmentPolicy.js";
import type { AgentInput, DeploymentEventInput, DeploymentInput } from "../../../shared/src/proto.js";
import type { ArtifactInfo } from "../artifacts/artifactStore.js";
import type { AgentView } from "../registry.js";
import { DEFAULT_TARGET_PAGE } from "../requests.js";
import type { Artifact as ArtifactInput } from "../../../shared/src/gen/deploy/v1/Artifact.js";

export function timestamp(iso: string | undefined): { seconds: string; nanos: number } | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

const duration = (ms: number): { seconds: string; nanos: number } => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });

export const targetStateEnum = (s: TargetState): `TARGET_STATE_${TargetState}` => `TARGET_STATE_${s}`;

const restoredMessage = (r: RestoredRelease | undefined): DeploymentInput["restores"] =>
  r
    ? {
        deploymentId: r.deploymentId,
        version: r.version,
        release: r.release,
        artifact: r.artifact ? { name: r.artifact.name, digest: r.artifact.digest } : null,
      }
    : null;

/** A page of targets: from index `start` of the rollout order, at most `pageSize`, only those in `state` when given. */
export interface TargetPage {
  pageSize: number;
  start: number;
  state?: TargetState;
  /**
   * Bytes left for targets in the whole answer, shared by the deployments
   * of one (listPage): each takes what its targets use. Absent: the page
   * has TARGET_PAGE_BYTES of its own.
   */
  budget?: { bytes: number };
  /** Only this agent's target (ListDeployments of an agent's history). */
  agentId?: string;
}

/** What a page of targets may take: about half of gRPC's default 4 MiB receive limit, the rest for everything else. */
export const TARGET_PAGE_BYTES = 2 * 1024 * 1024;

/**
 * The targets of one page and the token of the next (empty on the last).
 * Without a page: the first DEFAULT_TARGET_PAGE (ListDeployments, and the
 * answers of CancelDeployment and the other decisions): every target of a
 * deployment of up to 1,000, as before paging; GetDeployment pages the rest.
 */
function targetPage(rec: DeploymentRecord, page: TargetPage): { targets: DeploymentInput["targets"]; next: string } {
  const out: NonNullable<DeploymentInput["targets"]> = [];
  const ids = page.agentId === undefined ? rec.spec.targets : rec.targets[page.agentId] ? [page.agentId] : [];
  const limit = page.budget?.bytes ?? TARGET_PAGE_BYTES;
  let bytes = 0;
  let i = page.start;
  for (; i < ids.length && out.length < page.pageSize && bytes < limit; i++) {
    const agentId = ids[i]!;
    const t = rec.targets[agentId]!;
    if (page.state !== undefined && t.state !== page.state) continue;
    // Protobuf bytes are about the strings' lengths plus tags and times.
    bytes += agentId.length + t.message.length + (t.lastOutput?.length ?? 0) + (t.lateResult?.length ?? 0) + 64;
    out.push({
      agentId,
      state: targetStateEnum(t.state),
      message: t.message,
      dispatchedAt: timestamp(t.dispatchedAt),
      startedAt: timestamp(t.startedAt),
      finishedAt: timestamp(t.finishedAt),
      lastOutput: t.lastOutput ?? "",
      lateResult: t.lateResult ?? "",
      rolledBack: t.rolledBack === true,
    });
  }
  if (page.budget) page.budget.bytes = Math.max(0, page.budget.bytes - bytes);
  // Another target in the filter after this page? Only then a token.
  let more = false;
  for (let k = i; k < ids.length; k++) {
    if (page.state === undefined || rec.targets[ids[k]!]!.state === page.state) {
      more = true;
      break;
    }
  }
  return { targets: out, next: more ? `t${i}` : "" };
}

/**
 * A page of deployments (ListDeployments, GET /api/deployments), each with
 * its first targets while the answer's TARGET_PAGE_BYTES last: 20
 * deployments of 1,000 targets each were ~6 MB, over the 4 MiB a gRPC
 * client takes by default (`deployctl list` failed). A deployment past the
 * budget comes with fewer targets or none, and its next_page_token
 * (GetDeployment pages on from there); its counts are always whole.
 */
export function listPage(records: DeploymentRecord[], agentId?: string): DeploymentInput[] {
  const budget = { bytes: TARGET_PAGE_BYTES };
  return records.map((d) => toDeploymentMessage(d, "", { pageSize: DEFAULT_TARGET_PAGE, start: 0, budget, ...(agentId ? { agentId } : {}) }));
}

/** `revertedBy`: the automatic revert of this deployment, when one exists (looked up by the caller: rollback.ts revertRequestId). */
export function toDeploymentMessage(rec: DeploymentRecord, revertedBy = "", page: TargetPage = { pageSize: DEFAULT_TARGET_PAGE, start: 0 }): DeploymentInput {
  const counts = countTargets(rec);
  const st = rec.spec.strategy;
  const requester = requesterOf(rec.spec);
  const { targets, next } = targetPage(rec, page);
  return {
    id: rec.spec.id,
    requestId: rec.spec.requestId,
    app: rec.spec.app,
    environment: rec.spec.environment,
    changeset: {
      version: rec.spec.changeset.version,
      artifact: rec.spec.changeset.artifact ? { name: rec.spec.changeset.artifact.name, digest: rec.spec.changeset.artifact.digest } : null,
    },
    strategy: {
      maxConcurrency: rec.spec.strategy.maxConcurrency,
      maxFailures: rec.spec.strategy.maxFailures,
      // The form given, beside the resolved count in force.
      maxConcurrencyPercent: rec.spec.strategy.maxConcurrencyPercent === undefined ? "" : `${rec.spec.strategy.maxConcurrencyPercent}%`,
      maxFailuresPercent: rec.spec.strategy.maxFailuresPercent === undefined ? "" : `${rec.spec.strategy.maxFailuresPercent}%`,
      deliveryTimeout: duration(rec.spec.strategy.deliveryTimeoutMs),
      applyTimeout: duration(rec.spec.strategy.applyTimeoutMs),
      ...(st.canary ? { canary: st.canary } : {}),
      canaryPercent: st.canaryPercent === undefined ? "" : `${st.canaryPercent}%`,
      canarySoak: st.canarySoakMs === undefined ? null : duration(st.canarySoakMs),
      autoRevert: st.autoRevert === true,
      onlyOutdated: st.onlyOutdated === true,
      ignoreStopFailures: st.ignoreStopFailures === true,
      maxPause: duration(st.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS),
      soak: st.soakMs === undefined ? null : duration(st.soakMs),
    },
    state: `DEPLOYMENT_STATE_${rec.state}`,
    message: rec.message,
    targets,
    targetCount: rec.spec.targets.length,
    nextPageToken: next,
    cordonedLeftOut: rec.spec.cordonedLeftOut?.ids ?? [],
    cordonedLeftOutCount: rec.spec.cordonedLeftOut?.count ?? 0,
    counts: TARGET_STATES.filter((s) => counts[s] > 0).map((s) => ({ state: targetStateEnum(s), count: counts[s] })),
    lastSequence: String(rec.lastSeq),
    createdAt: timestamp(rec.createdAt),
    updatedAt: timestamp(rec.updatedAt),
    finishedAt: timestamp(rec.finishedAt),
    requestedBy: requester.identity,
    cancelRequested: rec.cancelRequested,
    killRequested: rec.killRequested === true,
    selector: rec.spec.selector ?? "",
    requestedByNote: requester.note,
    cancelledBy: rec.cancelledBy ?? "",
    convergesTo: rec.spec.convergesTo ?? "",
    paused: rec.paused !== undefined,
    pausedBy: rec.paused?.by ?? "",
    awaitingPromotion: awaitingPromotion(rec),
    promoteAt: awaitingPromotion(rec) && st.canarySoakMs !== undefined ? timestamp(new Date(Date.parse(rec.canaryDoneAt!) + st.canarySoakMs).toISOString()) : null,
    promotedBy: rec.promotedBy ?? "",
    canaryTargets: canaryTargetsOf(rec),
    reverts: rec.spec.reverts ?? "",
    restores: restoredMessage(rec.spec.restores),
    promotedFrom: rec.spec.promotedFrom
      ? {
          ...restoredMessage(rec.spec.promotedFrom),
          app: rec.spec.app,
          environment: rec.spec.promotedFrom.environment,
          ...(rec.spec.promotedFrom.succeededAt ? { succeededAt: timestamp(rec.spec.promotedFrom.succeededAt) } : {}),
        }
      : null,
    freezeOverride: freezeOverrideMessage(rec.spec.environment, rec.spec.freezeOverride),
    revertedBy,
    cancelRevertsTo: restoredMessage(rec.cancelRevertTo),
  };
}

/** Every canary succeeded and the rollout waits for a promote (or its soak time). */
export const awaitingPromotion = (rec: DeploymentRecord): boolean => rec.canaryDoneAt !== undefined && rec.promotedBy === undefined && !isTerminalDeployment(rec.state);

/** "<n> target(s): <the first 8>, …", for a dispatch. */
const targetList = (ids: string[]): string => `${ids.length} target(s): ${ids.slice(0, 8).join(", ")}${ids.length > 8 ? ", …" : ""}`;

/** One event as a watcher sees it, with the states the fold gave after it. */
export function toEventMessage(se: StoredEvent, rec: DeploymentRecord | undefined, ignored: string | undefined): DeploymentEventInput {
  const e = se.event;
  const agentId = "agentId" in e ? e.agentId : "";
  const t = agentId && rec ? rec.targets[agentId] : undefined;
  let message = "";
  let actor = "";
  switch (e.type) {
    case "target.result":
    case "target.timed_out":
    case "target.cancelled":
    case "deployment.halted":
    case "deployment.finished":
      message = e.message;
      break;
    case "deployment.cancel_requested":
      message = [e.reason, e.kill === true ? "kill_running: the applies in flight are killed" : "", e.revertTo ? `revert: the changed targets go back to ${e.revertTo.version} (release ${e.revertTo.release})` : ""]
        .filter((part) => part !== "")
        .join("; ");
      actor = e.by ?? "";
      break;
    case "deployment.paused":
      message = e.reason;
      actor = e.by;
      break;
    case "deployment.resumed":
    case "deployment.promoted":
      actor = e.by;
      break;
    case "deployment.canary_done":
      message = e.message;
      break;
    case "target.declined":
      message = e.reason;
      break;
    case "agent.rejected_message":
      message = `${e.subject}: ${e.error}`;
      break;
    case "target.progress":
      message = e.linesCut > 0 ? `${e.linesCut} output line(s) cut` : "";
      break;
    case "deployment.created": {
      const { identity, note } = requesterOf(e.spec);
      message =
        `${e.spec.app}@${e.spec.changeset.version} to ${e.spec.targetCount ?? e.spec.targets.length} target(s) in ${e.spec.environment}${e.spec.selector ? ` (selector ${e.spec.selector})` : ""}` +
        `${identity ? `, requested by ${identity}` : ""}${note ? ` (note: ${note})` : ""}` +
        (e.dispatched ? `; dispatched ${targetList(e.dispatched)}` : "");
      actor = identity;
      break;
    }
    case "deployment.targets":
      // Up to 20,000 ids: named by count only, so a watch's events stay small.
      message = `${e.agentIds.length} target(s) recorded${e.offline ? ` (${Object.keys(e.offline).length} offline)` : ""}${e.current ? ` (${Object.keys(e.current).length} already current)` : ""}`;
      break;
    case "targets.dispatched":
      message = targetList(e.agentIds);
      break;
    default:
      break;
  }
  if (ignored) message = message ? `${message} (no effect: ${ignored})` : `no effect: ${ignored}`;
  return {
    sequence: String(se.seq),
    time: timestamp(se.time),
    type: e.type,
    deploymentId: e.deploymentId,
    agentId,
    targetState: t ? targetStateEnum(t.state) : "TARGET_STATE_UNSPECIFIED",
    message,
    deploymentState: rec ? `DEPLOYMENT_STATE_${rec.state}` : "DEPLOYMENT_STATE_UNSPECIFIED",
    lines: e.type === "target.progress" ? e.lines : [],
    // A single target.dispatched names its target in agentId.
    agentIds: e.type === "target.dispatched" ? [] : dispatchedIdsOf(e),
    actor,
  };
}

/** `releases`: per app, the agent against the desired release (convertRelease.ts toAgentReleases). */
export function toAgentMessage(a: AgentView, live: boolean, releases: AgentInput["releases"] = [], cordon?: CordonRecord): AgentInput {
  return {
    id: a.record.id,
    environment: a.record.environment,
    apps: a.record.apps,
    host: a.record.host,
    version: a.record.version,
    lastHeartbeat: timestamp(new Date(a.heartbeatAt).toISOString()),
    live,
    labels: a.record.labels,
    currentReleases: a.record.currentReleases,
    releases,
    ...(cordon ? { cordon: { reason: cordon.reason, cordonedBy: cordon.by.name, cordonedAt: timestamp(cordon.at) } } : {}),
  };
}

export type ArtifactMsg = ArtifactInput;

export function toArtifactMessage(a: ArtifactInfo): ArtifactInput {
  return { app: a.app, name: a.name, digest: a.digest, size: String(a.size), createdAt: timestamp(a.createdAt), hooks: a.hooks };
}

export function toFreezeMessage(f: FreezeRecord, inForce: boolean): EnvironmentFreeze {
  return {
    environment: f.environment,
    frozen: f.frozen,
    reason: f.reason,
    by: f.by.name,
    at: timestamp(f.at),
    until: timestamp(f.until),
    name: f.name ?? "",
    windows: f.windows ?? [],
    timeZone: f.windows ? (f.timeZone ?? "UTC") : "",
    inForce,
  };
}

/** SetEnvironmentPolicy's answer and ListEnvironmentPolicies' entries (a cleared policy: no rules). */
export function toPolicyMessage(p: PolicyRecord): EnvironmentPolicy {
  return {
    environment: p.environment,
    app: p.app ?? "",
    promoteFrom: p.promoteFrom ?? "",
    minSoak: p.minSoakMs === undefined ? null : duration(p.minSoakMs),
    requireCanary: p.requireCanary === true,
    reason: p.reason,
    by: p.by.name,
    at: timestamp(p.at),
  };
}

/** ListFreezes (and GET /api/freezes): every freeze that holds, with whether it is in force now. */
export function toFreezesMessage(list: { record: FreezeRecord; inForce: boolean }[]): { freezes: EnvironmentFreeze[] } {
  return { freezes: list.map((f) => toFreezeMessage(f.record, f.inForce)) };
}

function freezeOverrideMessage(environment: string, o: FreezeOverride | undefined): { reason: string; freeze: EnvironmentFreeze } | null {
  if (!o) return null;
  return {
    reason: o.reason,
    freeze: { environment, frozen: true, reason: o.freeze.reason, by: o.freeze.by, at: timestamp(o.freeze.at), until: timestamp(o.freeze.until), name: o.freeze.name ?? "", inForce: true },
  };
}
