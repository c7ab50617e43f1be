// Tiny validation helpers: each names the field it rejects, so every schema
// function can give an error like "strategy.max_concurrency: must be >= 1".
import { ValidationError } from "./errors.js";
import { agentIdProblem, isToken, TOKEN_RULE } from "./names.js";

export type Obj = Record<string, unknown>;

export function asObject(v: unknown, field: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ValidationError(field, "must be an object");
  return v as Obj;
}

export function asString(v: unknown, field: string, opts: { maxLength?: number; allowEmpty?: boolean } = {}): string {
  if (typeof v !== "string") throw new ValidationError(field, "must be a string");
  if (!opts.allowEmpty && v.length === 0) throw new ValidationError(field, "is required");
  const max = opts.maxLength ?? 4096;
  if (v.length > max) throw new ValidationError(field, `must be at most ${max} characters`);
  return v;
}

export function asToken(v: unknown, field: string): string {
  const s = asString(v, field, { maxLength: 64 });
  if (!isToken(s)) throw new ValidationError(field, `"${s.slice(0, 80)}" is not valid: use ${TOKEN_RULE}`);
  return s;
}

/** A token that is not one of the protocol's reserved source names. */
export function asAgentId(v: unknown, field: string): string {
  const s = asString(v, field, { maxLength: 64 });
  const problem = agentIdProblem(s);
  if (problem !== undefined) throw new ValidationError(field, problem);
  return s;
}

export function asInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ValidationError(field, "must be an integer");
  if (v < min || v > max) throw new ValidationError(field, `must be between ${min} and ${max}`);
  return v;
}

export function asBoolean(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ValidationError(field, "must be true or false");
  return v;
}

export function asOptionalString(v: unknown, field: string, maxLength = 4096): string | undefined {
  return v === undefined || v === null ? undefined : asString(v, field, { maxLength, allowEmpty: true });
}

export function asStringArray(v: unknown, field: string, item: (s: unknown, f: string) => string, maxItems = 100_000): string[] {
  if (!Array.isArray(v)) throw new ValidationError(field, "must be an array");
  if (v.length > maxItems) throw new ValidationError(field, `must have at most ${maxItems} items`);
  return v.map((s, i) => item(s, `${field}[${i}]`));
}

export function asEnum<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    throw new ValidationError(field, `must be one of ${values.join(", ")}`);
  }
  return v as T;
}

export function asIsoTime(v: unknown, field: string): string {
  const s = asString(v, field, { maxLength: 40 });
  if (Number.isNaN(Date.parse(s))) throw new ValidationError(field, "must be an ISO-8601 time");
  return s;
}

/** Keys of label-like maps (agent labels, current release per app). */
export const MAP_KEY = /^[A-Za-z0-9_./-]{1,128}$/;
export const MAP_KEY_RULE = "1-128 characters from A-Z a-z 0-9 _ . / -";

export function asStringMap(v: unknown, field: string): Record<string, string> {
  const o = asObject(v, field);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) {
    // Checked before the key goes into a field name: an error must name a
    // field a reader can find (fuzzing found "agent.currentReleases. : …").
    if (!MAP_KEY.test(k)) throw new ValidationError(field, `key ${JSON.stringify(k.slice(0, 40))} is not valid: use ${MAP_KEY_RULE}`);
    out[k] = asString(val, `${field}.${k}`, { allowEmpty: true });
  }
  return out;
}

/** Parses JSON bytes, naming `what` in the error. */
export function parseJson(data: Uint8Array | string, what: string): unknown {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError(what, `is not valid JSON (${(err as Error).message})`);
  }
}
