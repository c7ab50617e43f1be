// Cordons (node eligibility): deploy_cordons/<agent id>, written by
// coordinators only (CordonAgent, UncordonAgent). A cordoned agent takes no
// new deployment: targets are resolved without it, and convergence leaves it
// alone. An uncordon is written as a value too, not a delete, so the key's
// revisions keep who cordoned and who uncordoned the agent, when and why.
import { IDENTITY_SOURCES, MAX_IDENTITY_LENGTH, type Identity } from "./identity.js";
import { CORDON_SCHEMA } from "./names.js";
import { asAgentId, asEnum, asIsoTime, asObject, asString, parseJson } from "./validate.js";
import { ValidationError } from "./errors.js";

/** The longest reason recorded (CordonAgentRequest.reason, as for a cancel or a pause). */
export const MAX_CORDON_REASON = 1024;

export interface CordonRecord {
  schema: typeof CORDON_SCHEMA;
  agentId: string;
  /** false: the record of an uncordon (the agent takes deployments again). */
  cordoned: boolean;
  /** Why it was cordoned; empty when none was given, and in an uncordon's record. */
  reason: string;
  by: Identity;
  /** The coordinator's wall clock when it was asked (shown, never compared). */
  at: string;
}

export function cordonRecord(agentId: string, cordoned: boolean, reason: string, by: Identity, at = new Date()): CordonRecord {
  return { schema: CORDON_SCHEMA, agentId, cordoned, reason, by: { name: by.name, via: by.via }, at: at.toISOString() };
}

/** A stored cordon record; `key` is the KV key it was read under, which must be its agent's id. */
export function parseCordonRecord(data: Uint8Array, key: string): CordonRecord {
  const o = asObject(parseJson(data, "cordon"), "cordon");
  if (o.schema !== CORDON_SCHEMA) throw new ValidationError("cordon.schema", `expected ${CORDON_SCHEMA}`);
  const agentId = asAgentId(o.agentId, "cordon.agentId");
  if (agentId !== key) throw new ValidationError("cordon.agentId", `${agentId} stored under key ${key}`);
  if (typeof o.cordoned !== "boolean") throw new ValidationError("cordon.cordoned", "must be true or false");
  const by = asObject(o.by, "cordon.by");
  return {
    schema: CORDON_SCHEMA,
    agentId,
    cordoned: o.cordoned,
    reason: asString(o.reason ?? "", "cordon.reason", { maxLength: MAX_CORDON_REASON, allowEmpty: true }),
    by: { name: asString(by.name, "cordon.by.name", { maxLength: MAX_IDENTITY_LENGTH }), via: asEnum(by.via, "cordon.by.via", IDENTITY_SOURCES) },
    at: asIsoTime(o.at, "cordon.at"),
  };
}

/** How a cordon reads in a refusal or a log line: `cordoned by alice at <time>: disk swap`. */
export function cordonText(c: CordonRecord): string {
  return `cordoned by ${c.by.name} at ${c.at}${c.reason ? `: ${c.reason}` : ""}`;
}
