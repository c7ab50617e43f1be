// The coordinator's view of deploy_policies (SetEnvironmentPolicy): rebuilt
// from the bucket at start and kept current by a watch, as freezes.ts does,
// so a create asks it without a round trip. A coordinator applies its own
// write at once; the others see it with the watch, a delivery later.
import type { KV } from "@nats-io/kv";
import { parsePolicyRecord, policyHasRules, policyRecord, type Identity, type Logger, type PolicyRecord, type PolicyRules } from "../../shared/src/index.js";
import { FollowedRecords } from "./followBucket.js";
import type { CreateInput } from "./requests.js";

export class Policies {
  readonly #book: FollowedRecords<PolicyRecord>;

  constructor(
    kv: KV,
    /** The server's clock (serverClock.ts), in ms. */
    private readonly now: () => number,
    log: Logger,
  ) {
    this.#book = new FollowedRecords(kv, "policy", parsePolicyRecord, log);
  }

  get kv(): KV {
    return this.#book.kv;
  }

  start(): Promise<void> {
    return this.#book.start();
  }

  /** The environment's policy, if it has any rule. */
  get(environment: string): PolicyRecord | undefined {
    const r = this.#book.get(environment);
    return policyHasRules(r) ? r : undefined;
  }

  /** Every policy with a rule, by environment. */
  list(): PolicyRecord[] {
    return this.#book
      .records()
      .filter((r) => policyHasRules(r))
      .sort((a, b) => a.environment.localeCompare(b.environment));
  }

  /** Sets (or, with no rule, clears) the environment's policy; stored before it returns. Clearing one that has no rule writes nothing. */
  set(environment: string, rules: PolicyRules, reason: string, by: Identity): Promise<PolicyRecord> {
    const record = policyRecord(environment, rules, reason, by, new Date(this.now()));
    const prev = this.#book.get(environment);
    if (!policyHasRules(rules) && !policyHasRules(prev)) return Promise.resolve(prev ?? record);
    return this.#book.put(environment, record);
  }

  close(): Promise<void> {
    return this.#book.stop();
  }
}

/** Who set the policy, when and why, as every refusal names it. */
export function policyOrigin(p: PolicyRecord): string {
  return `set by ${p.by.name} at ${p.at}${p.reason ? `: ${p.reason}` : ""}`;
}

/**
 * Why the environment's policy refuses this creation (undefined: it does
 * not): not a promotion from the environment it names, or no canary wave
 * when it asks for one. A rollback, a revert or a convergence is never
 * refused: each brings back or spreads a release the environment already
 * had, and a policy must not close the way back. The least soak is the
 * promotion's gate (releases/promote.ts), asked before this.
 */
export function policyRefusal(input: Pick<CreateInput, "app" | "environment" | "promoteFrom" | "strategy" | "restores" | "convergesTo">, p: PolicyRecord | undefined): string | undefined {
  if (!p || input.restores || input.convergesTo) return undefined;
  const why = (rule: string): string => `environment ${input.environment}'s policy (${policyOrigin(p)}) ${rule}; rollbacks, reverts and convergence still run`;
  if (p.promoteFrom !== undefined && input.promoteFrom !== p.promoteFrom) {
    const asked = input.promoteFrom === undefined ? "this request deploys a new release" : `this request promotes from ${input.promoteFrom}`;
    return why(
      `accepts only promotions from ${p.promoteFrom}, and ${asked}: deploy ${p.promoteFrom}'s desired release with promote_from ${p.promoteFrom} (deployctl deploy --app ${input.app} --env ${input.environment} --from-env ${p.promoteFrom})`,
    );
  }
  const canary = input.strategy.canary;
  if (p.requireCanary === true && (canary === undefined || ("count" in canary && canary.count === 0))) {
    return why("asks every deployment for a canary wave, and this request has none: give strategy.canary or strategy.canary_percent (deployctl deploy --canary 1)");
  }
  return undefined;
}

/** The least soak the policy asks of a promotion from `from` (none when it names another environment, or none). */
export function policySoak(p: PolicyRecord | undefined, from: string | undefined): { ms: number; origin: string } | undefined {
  if (!p || p.minSoakMs === undefined || from === undefined || p.promoteFrom !== from) return undefined;
  return { ms: p.minSoakMs, origin: `environment ${p.environment}'s policy (${policyOrigin(p)})` };
}
