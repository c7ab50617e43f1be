// max_concurrency and max_failures as a count or a percentage of the
// targets, as SSM Run Command's MaxConcurrency and MaxErrors take them
// ("10", "10%"). A percentage resolves once, against the number of targets
// when the deployment is created; the spec keeps both the percentage (for
// display) and the resolved count (what the planner uses).
import { ValidationError } from "./errors.js";

export type Amount = { count: number } | { percent: number };

/** Whole percentages only, as SSM takes them: "0%" … "100%". */
const PERCENT = /^(\d{1,3})%$/;

/** Whether `text` is written as a percentage ("10%"), right or wrong. */
export const looksLikePercent = (text: string): boolean => text.trim().endsWith("%");

/**
 * "10%" → 10; a ValidationError naming `field` unless it is a whole
 * percentage between `min`% and 100%.
 */
export function parsePercent(text: string, field: string, min: number): number {
  const m = PERCENT.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!m || n < min || n > 100) throw new ValidationError(field, `${JSON.stringify(text.slice(0, 40))} is not valid: use a whole percentage from ${min}% to 100%, such as "10%"`);
  return n;
}

/** max_concurrency against `targets`: a count as given, a percentage as max(1, ceil(p% × targets)). */
export function resolveMaxConcurrency(a: Amount, targets: number): number {
  if ("count" in a) return a.count;
  // p × n is an exact integer; its quotient by 100 is never within rounding of the next integer.
  return Math.max(1, Math.ceil((a.percent * targets) / 100));
}

/** max_failures against `targets`: a count as given, a percentage as floor(p% × targets). */
export function resolveMaxFailures(a: Amount, targets: number): number {
  if ("count" in a) return a.count;
  return Math.floor((a.percent * targets) / 100);
}

/** "3" or "10%": the form given, for display and the request hash. */
export const amountText = (a: Amount): string => ("count" in a ? String(a.count) : `${a.percent}%`);
