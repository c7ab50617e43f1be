// Before deploy uploads anything: will CreateDeployment find agents to deploy
// to? The coordinator checks the same when the deployment is created (and
// has the last word: an agent may come or go in between), but by then a
// bundle of any size has been uploaded for nothing. ListAgents answers in
// one round trip; the messages follow the coordinator's own.
import type { Client } from "../client.js";
import { formatSelector, matchesSelector, parseSelector } from "../../../shared/src/selector.js";
import { PreflightError } from "../errors.js";

export interface PreflightInput {
  app: string;
  environment: string;
  /** Explicit targets; empty or absent: every live agent of app and environment. */
  targets?: string[];
  /** A label selector (already checked by the option parser): the live agents whose labels match. */
  selector?: string;
}

/** Undefined when the agents are there, else the refusal CreateDeployment would answer. */
export async function preflightProblem(client: Client, input: PreflightInput): Promise<PreflightError | undefined> {
  const { app, environment } = input;
  const where = `app ${app} in environment ${environment}`;
  const targets = input.targets ?? [];
  // Without explicit targets, the counts answer (one agent's worth of
  // answer, where the whole list of a fleet of 10,000 is ~10 MB); the list
  // is read only to name agents in a refusal.
  if (targets.length === 0) {
    const selector = input.selector ? formatSelector(parseSelector(input.selector)) : "";
    const counts = await client.agentCounts({ app, environment, selector });
    if (counts && counts.live > 0) return undefined;
  }
  const agents = (await client.listAgents({ app, environment })).agents ?? [];
  if (targets.length > 0) {
    const byId = new Map(agents.map((a) => [a.id ?? "", a]));
    const unknown = targets.findIndex((id) => !byId.has(id));
    if (unknown >= 0) {
      return new PreflightError("INVALID_ARGUMENT", `targets[${unknown}]: agent "${targets[unknown]}" does not serve ${where} (deployctl agents --app ${app} --env ${environment} lists those that do)`);
    }
    const dead = targets.filter((id) => !byId.get(id)!.live);
    if (dead.length > 0) return new PreflightError("FAILED_PRECONDITION", `target(s) not live (no recent heartbeat): ${dead.join(", ")}`);
    return undefined;
  }
  if (input.selector) {
    const sel = parseSelector(input.selector);
    const text = formatSelector(sel);
    const matching = agents.filter((a) => matchesSelector(sel, a.labels ?? {}));
    if (matching.length === 0) {
      return new PreflightError("FAILED_PRECONDITION", `selector "${text}" matches no agent registered for ${where} (${agents.length} registered; deployctl agents --app ${app} --env ${environment} shows their labels)`);
    }
    if (!matching.some((a) => a.live)) {
      const ids = matching.map((a) => a.id ?? "?");
      return new PreflightError("FAILED_PRECONDITION", `selector "${text}" matches ${ids.length} agent(s) of ${where}, none live (no recent heartbeat): ${ids.join(", ")}`);
    }
    return undefined;
  }
  if (agents.length === 0) {
    return new PreflightError("FAILED_PRECONDITION", `no agent serves ${where}: nothing to deploy to (deployctl agents --env ${environment} lists the agents there)`);
  }
  if (!agents.some((a) => a.live)) {
    const ids = agents.map((a) => a.id ?? "?");
    return new PreflightError("FAILED_PRECONDITION", `no live agent serves ${where}: ${ids.length} registered (${ids.join(", ")}), none with a recent heartbeat`);
  }
  return undefined;
}
