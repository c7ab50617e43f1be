// Environment freezes: deploy_freezes/<environment>, written by coordinators
// only (FreezeEnvironment, UnfreezeEnvironment). While an environment is
// frozen, CreateDeployment for it is refused, unless the request overrides
// the freeze with a reason (recorded in the deployment's spec: the audit).
// Rollbacks (RollbackRelease, strategy.auto_revert) and convergence still
// run: a freeze is for incidents and release windows, when a way back must
// stay open. An unfreeze is written as a value too, not a delete, so the
// key's revisions keep who froze and who unfroze, when and why.
import { IDENTITY_SOURCES, MAX_IDENTITY_LENGTH, type Identity } from "./identity.js";
import { FREEZE_SCHEMA } from "./names.js";
import { asEnum, asIsoTime, asObject, asString, asToken, parseJson } from "./validate.js";
import { ValidationError } from "./errors.js";

/** The longest reason recorded (a freeze's, or a create's override of one). */
export const MAX_FREEZE_REASON = 1024;

export interface FreezeRecord {
  schema: typeof FREEZE_SCHEMA;
  environment: string;
  /** false: the record of an unfreeze. */
  frozen: boolean;
  /** Why it was frozen (required for a freeze); in an unfreeze's record, why it was lifted, or empty. */
  reason: string;
  /** Who froze it, or in an unfreeze's record who lifted it. */
  by: Identity;
  /** The coordinator's clock (the server's) when it was asked. */
  at: string;
  /** When the freeze ends by itself; absent: at UnfreezeEnvironment. */
  until?: string;
}

export function freezeRecord(environment: string, frozen: boolean, reason: string, by: Identity, at: Date, until?: Date): FreezeRecord {
  return {
    schema: FREEZE_SCHEMA,
    environment,
    frozen,
    reason,
    by: { name: by.name, via: by.via },
    at: at.toISOString(),
    ...(frozen && until ? { until: until.toISOString() } : {}),
  };
}

/** Whether the record freezes its environment at `nowMs` (an ended freeze does not). */
export function freezeActive(r: FreezeRecord | undefined, nowMs: number): r is FreezeRecord {
  return r !== undefined && r.frozen && (r.until === undefined || Date.parse(r.until) > nowMs);
}

/** A stored freeze record; `key` is the KV key it was read under, which must be its environment. */
export function parseFreezeRecord(data: Uint8Array, key: string): FreezeRecord {
  const o = asObject(parseJson(data, "freeze"), "freeze");
  if (o.schema !== FREEZE_SCHEMA) throw new ValidationError("freeze.schema", `expected ${FREEZE_SCHEMA}`);
  const environment = asToken(o.environment, "freeze.environment");
  if (environment !== key) throw new ValidationError("freeze.environment", `${environment} stored under key ${key}`);
  if (typeof o.frozen !== "boolean") throw new ValidationError("freeze.frozen", "must be true or false");
  const by = asObject(o.by, "freeze.by");
  return {
    schema: FREEZE_SCHEMA,
    environment,
    frozen: o.frozen,
    reason: asString(o.reason ?? "", "freeze.reason", { maxLength: MAX_FREEZE_REASON, allowEmpty: true }),
    by: { name: asString(by.name, "freeze.by.name", { maxLength: MAX_IDENTITY_LENGTH }), via: asEnum(by.via, "freeze.by.via", IDENTITY_SOURCES) },
    at: asIsoTime(o.at, "freeze.at"),
    ...(o.until === undefined ? {} : { until: asIsoTime(o.until, "freeze.until") }),
  };
}

/** How a freeze reads in a refusal: `frozen by alice at <time> until <time>: incident 42`. */
export function freezeText(f: FreezeRecord): string {
  return `frozen by ${f.by.name} at ${f.at} ${f.until ? `until ${f.until}` : "until unfrozen"}: ${f.reason}`;
}

/**
 * A deployment created while its environment was frozen, by a request that
 * overrode the freeze (CreateDeploymentRequest.freeze_override_reason):
 * recorded in its spec, so the audit log keeps why, and which freeze.
 */
export interface FreezeOverride {
  reason: string;
  freeze: { reason: string; by: string; at: string; until?: string };
}

export function freezeOverrideOf(reason: string, f: FreezeRecord): FreezeOverride {
  return { reason, freeze: { reason: f.reason, by: f.by.name, at: f.at, ...(f.until ? { until: f.until } : {}) } };
}

export function parseFreezeOverride(v: unknown, field: string): FreezeOverride {
  const o = asObject(v, field);
  const f = asObject(o.freeze, `${field}.freeze`);
  return {
    reason: asString(o.reason, `${field}.reason`, { maxLength: MAX_FREEZE_REASON }),
    freeze: {
      reason: asString(f.reason ?? "", `${field}.freeze.reason`, { maxLength: MAX_FREEZE_REASON, allowEmpty: true }),
      by: asString(f.by, `${field}.freeze.by`, { maxLength: MAX_IDENTITY_LENGTH }),
      at: asIsoTime(f.at, `${field}.freeze.at`),
      ...(f.until === undefined ? {} : { until: asIsoTime(f.until, `${field}.freeze.until`) }),
    },
  };
}
