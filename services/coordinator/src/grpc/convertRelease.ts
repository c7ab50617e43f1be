// Desired releases and an agent's place against them → API messages.
import type { AgentRecord, DesiredRelease, ReleaseSummary } from "../../../shared/src/index.js";
import type { AgentRelease } from "../../../shared/src/gen/deploy/v1/AgentRelease.js";
import type { Release } from "../../../shared/src/gen/deploy/v1/Release.js";
import { releaseStatus } from "../releases/agentReleases.js";
import { timestamp } from "./convert.js";

/** Looks up the desired release of an (app, environment). */
export type DesiredOf = (app: string, environment: string) => DesiredRelease | undefined;

function summaryMessage(app: string, environment: string, r: ReleaseSummary): Release {
  return {
    app,
    environment,
    deploymentId: r.deploymentId,
    version: r.version,
    artifact: r.artifact ? { name: r.artifact.name, digest: r.artifact.digest } : null,
    release: r.release,
    succeededAt: timestamp(r.succeededAt),
    finishedSequence: String(r.finishedSeq),
    selection: r.selection,
    selector: r.selector ?? "",
  };
}

/** The desired release, with the one before it unless `withPrevious` is false. */
export function toReleaseMessage(r: DesiredRelease, withPrevious = true): Release {
  return {
    ...summaryMessage(r.app, r.environment, r),
    previous: withPrevious && r.previous ? summaryMessage(r.app, r.environment, r.previous) : null,
  };
}

/** Per app the agent serves: its current release, the desired one, and whether it is on it. */
export function toAgentReleases(agent: AgentRecord, live: boolean, desiredOf: DesiredOf): AgentRelease[] {
  return agent.apps.map((app) => {
    const d = desiredOf(app, agent.environment);
    const mine = agent.releases?.[app];
    return {
      app,
      current: agent.currentReleases[app] ?? "",
      currentDeploymentId: mine?.deploymentId ?? "",
      currentVersion: mine?.version ?? "",
      desired: d ? toReleaseMessage(d, false) : null,
      status: `RELEASE_STATUS_${releaseStatus(agent, live, app, d)}`,
    };
  });
}
