// What a CreateDeployment request means against the fleet as it is now: its
// targets (an explicit list, the agents a label selector matches, or every
// agent registered for the app and environment, those not live recorded as
// offline) and its strategy, with percentages resolved against the number
// of targets that will be deployed to. Resolved once, at creation: the
// deployment records the result and never resolves again.
import {
  cordonText,
  DEFAULT_MAX_PAUSE_MS,
  PreconditionError,
  ValidationError,
  matchesSelector,
  resolveMaxConcurrency,
  resolveMaxFailures,
  type Strategy,
} from "../../shared/src/index.js";
import type { AgentView, Registry } from "./registry.js";
import { runsChangeset } from "./releases/agentReleases.js";
import type { CreateInput, StrategyInput } from "./requests.js";

/** The targets of a deployment, in rollout order, and those of them that are not live now. */
export interface ResolvedTargets {
  targets: string[];
  /**
   * Agent id → last heartbeat (ISO time) of the targets that are registered
   * but not live: recorded in the spec (offlineTargets) and SKIPPED from the
   * start, never dropped silently. Empty for explicit targets, which must
   * all be live.
   */
  offline: Record<string, string>;
  /**
   * With strategy.only_outdated: agent id → the release it runs, of the
   * targets whose agent reports this changeset (the same version and
   * artifact) installed: recorded in the spec (currentTargets) and SKIPPED
   * from the start as done. Taken out of `offline` (what it runs is what
   * matters, not whether it is live now). Empty without only_outdated.
   */
  current: Record<string, string>;
  /**
   * Cordoned agents the selection would have had and left out (CordonAgent):
   * not targets at all, as an ineligible node is no candidate. Named in a
   * validate_only answer; the deployment itself does not record them.
   */
  cordoned: string[];
}

/** Up to `max` of the agents, each with its cordon: for a refusal. */
function cordonedText(ids: readonly string[], registry: Registry, max = 5): string {
  const shown = ids.slice(0, max).map((id) => `${id} (${cordonText(registry.cordonOf(id)!)})`);
  return `${shown.join(", ")}${ids.length > max ? `, and ${ids.length - max} more` : ""}`;
}

/** `agents` without the cordoned ones, and those. */
function withoutCordoned(agents: AgentView[], registry: Registry): { eligible: AgentView[]; cordoned: string[] } {
  const eligible: AgentView[] = [];
  const cordoned: string[] = [];
  for (const a of agents) {
    if (registry.cordonOf(a.record.id)) cordoned.push(a.record.id);
    else eligible.push(a);
  }
  return { eligible, cordoned };
}

/**
 * The agent ids to deploy to. Explicit targets must be registered for the
 * app and environment (INVALID_ARGUMENT naming the entry) and live
 * (FAILED_PRECONDITION): the caller named them, so one that cannot be
 * reached is refused, not skipped. Otherwise every agent registered for the
 * app and environment (those the selector matches when one is given): the
 * live ones are deployed to, the others are targets recorded as offline. At
 * least one must be live (FAILED_PRECONDITION): a deployment that can reach
 * nobody does nothing.
 *
 * Cordoned agents take no new deployment: named as targets they are refused
 * (FAILED_PRECONDITION naming the cordon: uncordon them or leave them out),
 * except in the lists the coordinator makes itself (a rollback's or an
 * automatic revert's, offlineAllowed), which leave them out as a selection
 * does.
 */
export function resolveTargets(input: CreateInput, registry: Registry, now: number): ResolvedTargets {
  const resolved = resolveAll(input, registry, now);
  return input.strategy.onlyOutdated ? withCurrent(input, resolved, registry) : resolved;
}

/** `resolved` with the targets already on the changeset moved to `current` (strategy.only_outdated). */
function withCurrent(input: CreateInput, resolved: ResolvedTargets, registry: Registry): ResolvedTargets {
  const current: Record<string, string> = {};
  const offline = { ...resolved.offline };
  for (const id of resolved.targets) {
    const agent = registry.get(id);
    const release = agent ? runsChangeset(agent.record, input.app, input.changeset) : undefined;
    if (release === undefined) continue;
    current[id] = release;
    delete offline[id];
  }
  return { ...resolved, offline, current };
}

function resolveAll(input: CreateInput, registry: Registry, now: number): ResolvedTargets {
  if (input.selector) return selectTargets(input, input.selector, registry, now);
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
    const { eligible, cordoned } = withoutCordoned(input.targets.map((id) => registry.get(id)!), registry);
    if (cordoned.length > 0 && (!input.offlineAllowed || eligible.length === 0)) {
      throw new PreconditionError(`${cordoned.length} target(s) cordoned (they take no new deployment): ${cordonedText(cordoned, registry)}; uncordon them (deployctl uncordon <agent>) or leave them out`);
    }
    if (input.offlineAllowed) return { ...withOffline(eligible, registry, now), cordoned };
    const dead = input.targets.filter((id) => !registry.isLive(registry.get(id)!, now));
    // Named up to 20: the error of a 100,000-target request stays readable (and under gRPC's limits).
    if (dead.length > 0) throw new PreconditionError(`${dead.length} target(s) not live (no recent heartbeat): ${dead.slice(0, 20).join(", ")}${dead.length > 20 ? ", …" : ""}`);
    return { targets: input.targets, offline: {}, current: {}, cordoned: [] };
  }
  const { eligible, cordoned } = withoutCordoned(registry.list({ app: input.app, environment: input.environment }), registry);
  if (!eligible.some((a) => registry.isLive(a, now))) {
    const also = cordoned.length > 0 ? ` that is not cordoned (cordoned: ${cordonedText(cordoned, registry)})` : "";
    throw new PreconditionError(`no live agent${also} serves app ${input.app} in environment ${input.environment}`);
  }
  return { ...withOffline(eligible, registry, now), cordoned };
}

function withOffline(agents: AgentView[], registry: Registry, now: number): Omit<ResolvedTargets, "cordoned"> {
  const offline: Record<string, string> = {};
  for (const a of agents) if (!registry.isLive(a, now)) offline[a.record.id] = new Date(a.heartbeatAt).toISOString();
  return { targets: agents.map((a) => a.record.id), offline, current: {} };
}

/**
 * The agents of app and environment whose labels match the selector: the
 * live ones are deployed to, the others recorded as offline. None matching,
 * or none of those live: FAILED_PRECONDITION naming it.
 */
function selectTargets(input: CreateInput, selector: NonNullable<CreateInput["selector"]>, registry: Registry, now: number): ResolvedTargets {
  const where = `app ${input.app} in environment ${input.environment}`;
  const registered = registry.list({ app: input.app, environment: input.environment });
  const { eligible: matching, cordoned } = withoutCordoned(
    registered.filter((a) => matchesSelector(selector.requirements, a.record.labels)),
    registry,
  );
  if (matching.length === 0 && cordoned.length > 0) {
    throw new PreconditionError(`selector "${selector.text}" matches ${cordoned.length} agent(s) of ${where}, all cordoned: ${cordonedText(cordoned, registry)}`);
  }
  if (matching.length === 0) {
    throw new PreconditionError(`selector "${selector.text}" matches no agent registered for ${where} (${registered.length} registered)`);
  }
  if (!matching.some((a) => registry.isLive(a, now))) {
    const ids = matching.map((a) => a.record.id);
    throw new PreconditionError(
      `selector "${selector.text}" matches ${ids.length} agent(s) of ${where}, none live (no recent heartbeat): ${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", …" : ""}`,
    );
  }
  return { ...withOffline(matching, registry, now), cordoned };
}

/**
 * The strategy in force: a percentage resolved against the targets chosen
 * now (never again: the rollout keeps these counts), kept beside the count
 * for display.
 */
export function resolveStrategy(st: StrategyInput, targets: number): Strategy {
  return {
    maxConcurrency: resolveMaxConcurrency(st.maxConcurrency, targets),
    maxFailures: resolveMaxFailures(st.maxFailures, targets),
    ...("percent" in st.maxConcurrency ? { maxConcurrencyPercent: st.maxConcurrency.percent } : {}),
    ...("percent" in st.maxFailures ? { maxFailuresPercent: st.maxFailures.percent } : {}),
    deliveryTimeoutMs: st.deliveryTimeoutMs,
    applyTimeoutMs: st.applyTimeoutMs,
    ...canaryWave(st, targets),
    ...(st.maxPauseMs !== undefined && st.maxPauseMs !== DEFAULT_MAX_PAUSE_MS ? { maxPauseMs: st.maxPauseMs } : {}),
    ...(st.autoRevert ? { autoRevert: true } : {}),
    ...(st.onlyOutdated ? { onlyOutdated: true } : {}),
    ...(st.ignoreStopFailures ? { ignoreStopFailures: true } : {}),
    ...(st.soakMs !== undefined ? { soakMs: st.soakMs } : {}),
  };
}

/**
 * The canary wave against the targets deployed to: a percentage as
 * max(1, ceil(p% × targets)); a count larger than the targets is refused
 * (INVALID_ARGUMENT): a wave of everything is no canary, and a caller who
 * asked for one should know.
 */
function canaryWave(st: StrategyInput, targets: number): Pick<Strategy, "canary" | "canaryPercent" | "canarySoakMs"> {
  if (!st.canary) return {};
  // With only_outdated the caller cannot know how many targets are left
  // to deploy to: a wave larger than them is all of them (a rollout that
  // finishes once they are done), and with none left there is no wave.
  if (st.onlyOutdated && targets === 0) return {};
  const canary = st.onlyOutdated ? Math.min(resolveMaxConcurrency(st.canary, targets), targets) : resolveMaxConcurrency(st.canary, targets);
  if ("count" in st.canary && canary > targets) {
    throw new ValidationError("strategy.canary", `${canary} is more than the ${targets} target(s) deployed to`);
  }
  return {
    canary,
    ...("percent" in st.canary ? { canaryPercent: st.canary.percent } : {}),
    ...(st.canarySoakMs === undefined ? {} : { canarySoakMs: st.canarySoakMs }),
  };
}
