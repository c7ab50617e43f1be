// What a CreateDeployment request means against the fleet as it is now: its
// targets (an explicit list, the agents a label selector matches, or every
// agent registered for the app and environment, those not live recorded as
// offline) and its strategy, with percentages resolved against the number
// of targets that will be deployed to. Resolved once, at creation: the
// deployment records the result and never resolves again.
import {
  DEFAULT_MAX_PAUSE_MS,
  PreconditionError,
  ValidationError,
  matchesSelector,
  resolveMaxConcurrency,
  resolveMaxFailures,
  type Strategy,
} from "../../shared/src/index.js";
import type { AgentView, Registry } from "./registry.js";
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
 */
export function resolveTargets(input: CreateInput, registry: Registry, now: number): ResolvedTargets {
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
    if (input.offlineAllowed) return withOffline(input.targets.map((id) => registry.get(id)!), registry, now);
    const dead = input.targets.filter((id) => !registry.isLive(registry.get(id)!, now));
    // Named up to 20: the error of a 100,000-target request stays readable (and under gRPC's limits).
    if (dead.length > 0) throw new PreconditionError(`${dead.length} target(s) not live (no recent heartbeat): ${dead.slice(0, 20).join(", ")}${dead.length > 20 ? ", …" : ""}`);
    return { targets: input.targets, offline: {} };
  }
  const registered = registry.list({ app: input.app, environment: input.environment });
  if (!registered.some((a) => registry.isLive(a, now))) throw new PreconditionError(`no live agent serves app ${input.app} in environment ${input.environment}`);
  return withOffline(registered, registry, now);
}

function withOffline(agents: AgentView[], registry: Registry, now: number): ResolvedTargets {
  const offline: Record<string, string> = {};
  for (const a of agents) if (!registry.isLive(a, now)) offline[a.record.id] = new Date(a.heartbeatAt).toISOString();
  return { targets: agents.map((a) => a.record.id), offline };
}

/**
 * The agents of app and environment whose labels match the selector: the
 * live ones are deployed to, the others recorded as offline. None matching,
 * or none of those live: FAILED_PRECONDITION naming it.
 */
function selectTargets(input: CreateInput, selector: NonNullable<CreateInput["selector"]>, registry: Registry, now: number): ResolvedTargets {
  const where = `app ${input.app} in environment ${input.environment}`;
  const registered = registry.list({ app: input.app, environment: input.environment });
  const matching = registered.filter((a) => matchesSelector(selector.requirements, a.record.labels));
  if (matching.length === 0) {
    throw new PreconditionError(`selector "${selector.text}" matches no agent registered for ${where} (${registered.length} registered)`);
  }
  if (!matching.some((a) => registry.isLive(a, now))) {
    const ids = matching.map((a) => a.record.id);
    throw new PreconditionError(
      `selector "${selector.text}" matches ${ids.length} agent(s) of ${where}, none live (no recent heartbeat): ${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", …" : ""}`,
    );
  }
  return withOffline(matching, registry, now);
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
  const canary = resolveMaxConcurrency(st.canary, targets);
  if ("count" in st.canary && canary > targets) {
    throw new ValidationError("strategy.canary", `${canary} is more than the ${targets} target(s) deployed to`);
  }
  return {
    canary,
    ...("percent" in st.canary ? { canaryPercent: st.canary.percent } : {}),
    ...(st.canarySoakMs === undefined ? {} : { canarySoakMs: st.canarySoakMs }),
  };
}
