// Domain records → API messages.
import {
  DEFAULT_MAX_PAUSE_MS,
  TARGET_STATES,
  canaryTargetsOf,
  countTargets,
  isTerminalDeployment,
  type RestoredRelease,
  requesterOf,
  type DeploymentRecord,
  type StoredEvent,
  type TargetState,
} from "../../../shared/src/index.js";
import type { AgentInput, DeploymentEventInput, DeploymentInput } from "../../../shared/src/proto.js";
import type { ArtifactInfo } from "../artifacts/artifactStore.js";
import type { AgentView } from "../registry.js";
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

/** `revertedBy`: the automatic revert of this deployment, when one exists (looked up by the caller: rollback.ts revertRequestId). */
export function toDeploymentMessage(rec: DeploymentRecord, revertedBy = ""): DeploymentInput {
  const counts = countTargets(rec);
  const st = rec.spec.strategy;
  const requester = requesterOf(rec.spec);
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
      maxPause: duration(st.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS),
    },
    state: `DEPLOYMENT_STATE_${rec.state}`,
    message: rec.message,
    targets: rec.spec.targets.map((agentId) => {
      const t = rec.targets[agentId]!;
      return {
        agentId,
        state: targetStateEnum(t.state),
        message: t.message,
        dispatchedAt: timestamp(t.dispatchedAt),
        startedAt: timestamp(t.startedAt),
        finishedAt: timestamp(t.finishedAt),
        lastOutput: t.lastOutput ?? "",
        lateResult: t.lateResult ?? "",
        rolledBack: t.rolledBack === true,
      };
    }),
    counts: TARGET_STATES.filter((s) => counts[s] > 0).map((s) => ({ state: targetStateEnum(s), count: counts[s] })),
    lastSequence: String(rec.lastSeq),
    createdAt: timestamp(rec.createdAt),
    updatedAt: timestamp(rec.updatedAt),
    finishedAt: timestamp(rec.finishedAt),
    requestedBy: requester.identity,
    cancelRequested: rec.cancelRequested,
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
    revertedBy,
  };
}

/** Every canary succeeded and the rollout waits for a promote (or its soak time). */
export const awaitingPromotion = (rec: DeploymentRecord): boolean => rec.canaryDoneAt !== undefined && rec.promotedBy === undefined && !isTerminalDeployment(rec.state);

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
      message = e.reason;
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
        `${e.spec.app}@${e.spec.changeset.version} to ${e.spec.targets.length} target(s) in ${e.spec.environment}${e.spec.selector ? ` (selector ${e.spec.selector})` : ""}` +
        `${identity ? `, requested by ${identity}` : ""}${note ? ` (note: ${note})` : ""}`;
      actor = identity;
      break;
    }
    case "targets.dispatched":
      message = `${e.agentIds.length} target(s): ${e.agentIds.slice(0, 8).join(", ")}${e.agentIds.length > 8 ? ", …" : ""}`;
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
    agentIds: e.type === "targets.dispatched" ? e.agentIds : [],
    actor,
  };
}

/** `releases`: per app, the agent against the desired release (convertRelease.ts toAgentReleases). */
export function toAgentMessage(a: AgentView, live: boolean, releases: AgentInput["releases"] = []): AgentInput {
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
  };
}

export type ArtifactMsg = ArtifactInput;

export function toArtifactMessage(a: ArtifactInfo): ArtifactInput {
  return { app: a.app, name: a.name, digest: a.digest, size: String(a.size), createdAt: timestamp(a.createdAt), hooks: a.hooks };
}
