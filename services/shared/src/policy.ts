// Environment policies: deploy_policies/<environment> (every app's) and
// deploy_policies/<environment>.<app> (one app's, which adds to the
// environment's), written by coordinators only (SetEnvironmentPolicy). A policy says what CreateDeployment accepts
// in its environment: only promotions from another environment (build once,
// test there, then promote), a least soak of the promoted release there, a
// canary wave. It constrains new releases only: rollbacks, reverts and
// convergence bring back or spread a release the environment already had,
// and run whatever it says (a policy must never block the way back). A
// cleared policy is written as a record without rules, not a delete, so the
// key's revisions keep who set and who cleared what, when and why.
import { IDENTITY_SOURCES, MAX_IDENTITY_LENGTH, type Identity } from "./identity.js";
import { POLICY_SCHEMA } from "./names.js";
import { asEnum, asIsoTime, asObject, asString, asToken, parseJson } from "./validate.js";
import { ValidationError } from "./errors.js";

/** The longest reason a policy records. */
export const MAX_POLICY_REASON = 1024;
/** The longest least soak a policy may ask (a month). */
export const MAX_POLICY_SOAK_MS = 30 * 24 * 3600 * 1000;

export interface PolicyRules {
  /** Only promotions (promote_from) from this environment are accepted. */
  promoteFrom?: string;
  /** A promotion's release must have been desired in promoteFrom at least this long. Only with promoteFrom. */
  minSoakMs?: number;
  /** Every deployment must have a canary wave. */
  requireCanary?: boolean;
}

export interface PolicyRecord extends PolicyRules {
  schema: typeof POLICY_SCHEMA;
  environment: string;
  /** The app it is for (key <environment>.<app>); absent: every app of the environment (key <environment>). */
  app?: string;
  /** Why it was set (or cleared). */
  reason: string;
  by: Identity;
  /** The coordinator's clock (the server's) when it was asked. */
  at: string;
}

/** Whether the record has any rule (a record without one is a cleared policy). */
export const policyHasRules = (r: PolicyRules | undefined): boolean =>
  r !== undefined && (r.promoteFrom !== undefined || r.minSoakMs !== undefined || r.requireCanary === true);

/** Throws ValidationError (naming the field) unless the rules fit together. */
export function checkPolicyRules(environment: string, r: PolicyRules, prefix = ""): void {
  if (r.promoteFrom !== undefined && r.promoteFrom === environment) {
    throw new ValidationError(`${prefix}promote_from`, `must be another environment than ${environment} (a promotion deploys another environment's release)`);
  }
  if (r.minSoakMs !== undefined) {
    if (r.promoteFrom === undefined) throw new ValidationError(`${prefix}min_soak`, "needs promote_from: it is how long a release must have been desired there before it is promoted");
    if (!(r.minSoakMs >= 1000) || r.minSoakMs > MAX_POLICY_SOAK_MS) throw new ValidationError(`${prefix}min_soak`, "must be from 1s to 30 days");
  }
}

/** "only promotions from staging, desired there at least 2h; a canary wave" ("" for none), its soak written by `durationText`. */
export function policyRulesText(r: PolicyRules, durationText: (ms: number) => string): string {
  return [
    r.promoteFrom !== undefined ? `only promotions from ${r.promoteFrom}${r.minSoakMs !== undefined ? `, desired there at least ${durationText(r.minSoakMs)}` : ""}` : "",
    r.requireCanary === true ? "a canary wave" : "",
  ]
    .filter(Boolean)
    .join("; ");
}

/** The policy's key in deploy_policies: the environment, or <environment>.<app> for one app's. */
export const policyKey = (environment: string, app?: string): string => (app === undefined ? environment : `${environment}.${app}`);

/** "environment prod's policy", "app web's policy in prod": how refusals and notifications name it. */
export const policyName = (p: Pick<PolicyRecord, "environment" | "app">): string =>
  p.app === undefined ? `environment ${p.environment}'s policy` : `app ${p.app}'s policy in ${p.environment}`;

export function policyRecord(environment: string, rules: PolicyRules, reason: string, by: Identity, at: Date, app?: string): PolicyRecord {
  return {
    schema: POLICY_SCHEMA,
    environment,
    ...(app !== undefined ? { app } : {}),
    ...(rules.promoteFrom !== undefined ? { promoteFrom: rules.promoteFrom } : {}),
    ...(rules.minSoakMs !== undefined ? { minSoakMs: rules.minSoakMs } : {}),
    ...(rules.requireCanary === true ? { requireCanary: true } : {}),
    reason,
    by: { name: by.name, via: by.via },
    at: at.toISOString(),
  };
}

/** A stored policy, checked as SetEnvironmentPolicy checks one (a value put with the nats CLI is read as strictly). */
export function parsePolicyRecord(data: Uint8Array, key: string): PolicyRecord {
  const o = asObject(parseJson(data, "policy"), "policy");
  if (o.schema !== POLICY_SCHEMA) throw new ValidationError("policy.schema", `expected ${POLICY_SCHEMA}`);
  const environment = asToken(o.environment, "policy.environment");
  const app = o.app === undefined ? undefined : asToken(o.app, "policy.app");
  if (policyKey(environment, app) !== key) throw new ValidationError("policy.environment", `${policyKey(environment, app)} stored under key ${key}`);
  const rules: PolicyRules = {
    ...(o.promoteFrom === undefined ? {} : { promoteFrom: asToken(o.promoteFrom, "policy.promoteFrom") }),
    ...(o.minSoakMs === undefined ? {} : { minSoakMs: soakOf(o.minSoakMs) }),
    ...(o.requireCanary === undefined ? {} : { requireCanary: boolOf(o.requireCanary, "policy.requireCanary") }),
  };
  checkPolicyRules(environment, rules, "policy.");
  const by = asObject(o.by, "policy.by");
  return policyRecord(
    environment,
    rules,
    asString(o.reason ?? "", "policy.reason", { maxLength: MAX_POLICY_REASON, allowEmpty: true }),
    { name: asString(by.name, "policy.by.name", { maxLength: MAX_IDENTITY_LENGTH }), via: asEnum(by.via, "policy.by.via", IDENTITY_SOURCES) },
    new Date(asIsoTime(o.at, "policy.at")),
    app,
  );
}

function soakOf(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ValidationError("policy.minSoakMs", "must be an integer number of ms");
  return v;
}

function boolOf(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ValidationError(field, "must be true or false");
  return v;
}
