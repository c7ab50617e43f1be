// An agent against the desired release of each app it serves: whether it is
// on it (ListAgents' status) and whether convergence should bring it there.
// Pure functions of the agent's registry entry and the desired release.
import { matchesSelector, parseSelector, type AgentRecord, type DesiredRelease, type ReleaseSummary, type Selector } from "../../../shared/src/index.js";
import type { CreateInput } from "../requests.js";

export const RELEASE_STATUSES = ["CURRENT", "OUTDATED", "OFFLINE", "NO_DESIRED_RELEASE"] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

export const sameArtifact = (a: { name: string; digest: string } | undefined, b: { name: string; digest: string } | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.name === b.name && a.digest === b.digest;

/**
 * Whether the agent runs `d` for `app`: installed by the deployment that
 * defined it, or the same version and artifact installed by another one (a
 * convergence deployment, or an identical redeploy). An agent that does not
 * say what its release is (one from before it reported it) is on `d` when
 * the release name is `d`'s.
 */
export function onRelease(agent: AgentRecord, app: string, d: ReleaseSummary): boolean {
  const r = agent.releases?.[app];
  if (r) return r.deploymentId === d.deploymentId || (r.version === d.version && sameArtifact(r.artifact, d.artifact));
  return agent.currentReleases[app] === d.release;
}

/**
 * The release the agent runs for `app` when it is `changeset` (the same
 * version and artifact, whichever deployment installed it): what
 * strategy.only_outdated leaves out. Undefined for an agent that does not
 * say what its release is (one from before it reported it): outdated.
 */
export function runsChangeset(agent: AgentRecord, app: string, changeset: CreateInput["changeset"]): string | undefined {
  const r = agent.releases?.[app];
  return r && r.version === changeset.version && sameArtifact(r.artifact, changeset.artifact) ? r.release : undefined;
}

export function releaseStatus(agent: AgentRecord, live: boolean, app: string, d: DesiredRelease | undefined): ReleaseStatus {
  if (!live) return "OFFLINE";
  if (!d) return "NO_DESIRED_RELEASE";
  return onRelease(agent, app, d) ? "CURRENT" : "OUTDATED";
}

/**
 * Whether the agent missed `d`: what it runs was installed by a deployment
 * created before `d`'s (ids are time-ordered: d-<ms base36>-<random>), or it
 * runs nothing. One on a later deployment's release (say, one that
 * succeeded on it in a deployment that FAILED elsewhere) was put there by
 * someone after `d`, and is left alone. A release whose deployment the
 * agent does not report (an agent from before it did) counts as missed.
 * Ids carry their creating coordinator's clock: a deployment created after
 * `d` finished (it needed `d`'s lock) is later than `d`'s creation by `d`'s
 * whole run, far more than the skew between coordinators' clocks.
 */
export function missed(agent: AgentRecord, app: string, d: ReleaseSummary): boolean {
  const r = agent.releases?.[app];
  return r === undefined || r.deploymentId < d.deploymentId;
}

const parsedSelectors = new Map<string, Selector>();

/**
 * Whether `d`'s deployment chose, or would have chosen, this agent: every
 * agent of the pair, or those its selector matches. A deployment to an
 * explicit list of agents (a canary, a hotfix on one box) spreads to no one.
 */
export function covers(d: DesiredRelease, agent: AgentRecord): boolean {
  if (d.selection === "all") return true;
  if (d.selection !== "selector" || d.selector === undefined) return false;
  let sel = parsedSelectors.get(d.selector);
  if (!sel) {
    try {
      sel = parseSelector(d.selector, "selector");
    } catch {
      return false; // recorded by another version of the grammar: spread to no one
    }
    if (parsedSelectors.size > 1000) parsedSelectors.clear();
    parsedSelectors.set(d.selector, sel);
  }
  return matchesSelector(sel, agent.labels);
}

/**
 * Whether convergence should bring the (live) agent to `d` for `app`: it is
 * not on it, missed it, and `d`'s deployment covers it. An agent that
 * registers or comes back after `d` succeeded is one; so is one that was
 * offline when `d` was created (SKIPPED there).
 */
export function needsConvergence(agent: AgentRecord, app: string, d: DesiredRelease): boolean {
  return !onRelease(agent, app, d) && missed(agent, app, d) && covers(d, agent);
}
