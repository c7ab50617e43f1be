import type { Freeze, Policy, Timestamp } from "./api.js";

export const ms = (t: Timestamp | null | undefined): number | undefined => (t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : undefined);

export function when(t: Timestamp | null | undefined): string {
  const v = ms(t);
  return v === undefined ? "—" : new Date(v).toLocaleString();
}

export function clock(t: Timestamp | null | undefined): string {
  const v = ms(t);
  if (v === undefined) return "";
  const d = new Date(v);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function ago(t: Timestamp | null | undefined, now = Date.now()): string {
  const v = ms(t);
  if (v === undefined) return "never";
  const s = Math.max(0, Math.round((now - v) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export const seconds = (t: Timestamp | null | undefined): string => (t ? `${Number(t.seconds) + t.nanos / 1e9} s` : "—");

/** "TARGET_STATE_APPLYING" → "APPLYING". */
export const short = (state: string): string => state.replace(/^(TARGET|DEPLOYMENT)_STATE_/, "");

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

/** "frozen by alice at <time> until <time>: incident 42" (deployctl's wording). */
export function freezeText(f: Pick<Freeze, "by" | "at" | "until" | "reason" | "name" | "windows" | "timeZone">): string {
  const windows = f.windows?.length ? `every ${f.windows.join(", ")} (${f.timeZone || "UTC"})` : "";
  const what = [f.name ? `"${f.name}"` : "", windows].filter(Boolean).join(", ");
  return `frozen${what ? ` (${what})` : ""} by ${f.by || "—"} at ${when(f.at)} ${f.until ? `until ${when(f.until)}` : "until unfrozen"}${f.reason ? `: ${f.reason}` : ""}`;
}

/** "only promotions from staging, desired there at least 2h; a canary wave" */
export function policyText(p: Pick<Policy, "promoteFrom" | "minSoak" | "requireCanary">): string {
  const soakS = p.minSoak ? Number(p.minSoak.seconds) : undefined;
  const soak = soakS === undefined ? "" : `, desired there at least ${soakS % 3600 === 0 ? `${soakS / 3600}h` : soakS % 60 === 0 ? `${soakS / 60}m` : `${soakS}s`}`;
  return [p.promoteFrom ? `only promotions from ${p.promoteFrom}${soak}` : "", p.requireCanary ? "a canary wave" : ""].filter(Boolean).join("; ");
}
