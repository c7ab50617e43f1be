// The coordinator's view of deploy_policies (SetEnvironmentPolicy): rebuilt
// from the bucket at start and kept current by a watch, as freezes.ts does,
// so a create asks it without a round trip. A coordinator applies its own
// write at once; the others see it with the watch, a delivery later.
import type { KV } from "@nats-io/kv";
import { parsePolicyRecord, policyHasRules, policyKey, policyName, policyRecord, type Identity, type Logger, type PolicyRecord, type PolicyRules } from "../../shared/src/index.js";
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

  /** The environment's own policy (app undefined) or one app's there, if it has any rule. */
  get(environment: string, app?: string): PolicyRecord | undefined {
    const r = this.#book.get(policyKey(environment, app));
    return policyHasRules(r) ? r : undefined;
  }

  /** The policies a deployment of `app` to `environment` must satisfy: the environment's, then the app's there. */
  applying(environment: string, app: string): PolicyRecord[] {
    return [this.get(environment), this.get(environment, app)].filter((p): p is PolicyRecord => p !== undefined);
  }

  /** Every policy with a rule, by environment, then app (the environment's own first). */
  list(): PolicyRecord[] {
    return this.#book
      .records()
      .filter((r) => policyHasRules(r))
      .sort((a, b) => a.environment.localeCompare(b.environment) || (a.app ?? "").localeCompare(b.app ?? ""));
  }

  /** Sets (or, with no rule, clears) the environment's or an app's policy; stored before it returns. Clearing one that has no rule writes nothing. */
  set(environment: string, app: string | undefined, rules: PolicyRules, reason: string, by: Identity): Promise<PolicyRecord> {
    const record = policyRecord(environment, rules, reason, by, new Date(this.now()), app);
    const key = policyKey(environment, app);
    const prev = this.#book.get(key);
    if (!policyHasRules(rules) && !policyHasRules(prev)) return Promise.resolve(prev ?? record);
    return this.#book.put(key, record);
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
 * Why the policies that apply (Policies.applying: the environment's, the
 * app's there) refuse this creation, the first that does (undefined: none
 * does): not a promotion from the environment it names, or no canary wave
 * when it asks for one. A rollback, a revert or a convergence is never
 * refused: each brings back or spreads a release the environment already
 * had, and a policy must not close the way back. The least soak is the
 * promotion's gate (releases/promote.ts), asked before this.
 */
export function policyRefusal(input: Pick<CreateInput, "app" | "environment" | "promoteFrom" | "strategy" | "restores" | "convergesTo">, policies: readonly PolicyRecord[]): string | undefined {
  if (input.restores || input.convergesTo) return undefined;
  for (const p of policies) {
    const refused = refusalBy(input, p);
    if (refused !== undefined) return refused;
  }
  return undefined;
}

function refusalBy(input: Pick<CreateInput, "app" | "environment" | "promoteFrom" | "strategy">, p: PolicyRecord): string | undefined {
  const why = (rule: string): string => `${policyName(p)} (${policyOrigin(p)}) ${rule}; rollbacks, reverts and convergence still run`;
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

/** The longest least soak the policies that apply ask of a promotion from `from` (none when they name another environment, or none). */
export function policySoak(policies: readonly PolicyRecord[], from: string | undefined): { ms: number; origin: string } | undefined {
  let longest: { ms: number; origin: string } | undefined;
  for (const p of policies) {
    if (p.minSoakMs === undefined || from === undefined || p.promoteFrom !== from || (longest && longest.ms >= p.minSoakMs)) continue;
    longest = { ms: p.minSoakMs, origin: `${policyName(p)} (${policyOrigin(p)})` };
  }
  return longest;
}
