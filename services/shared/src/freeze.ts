// Environment freezes: deploy_freezes/<environment> (a freeze without a name:
// an incident, a release window) and deploy_freezes/<environment>.<name> (a
// named one, typically recurring: "weekends", with weekly windows in a time
// zone), written by coordinators only (FreezeEnvironment,
// UnfreezeEnvironment). While a freeze of an environment is in force,
// CreateDeployment for it is refused, unless the request overrides the
// freeze with a reason (recorded in the deployment's spec: the audit).
// Rollbacks (RollbackRelease, strategy.auto_revert) and convergence still
// run: a freeze is for incidents and release windows, when a way back must
// stay open. An unfreeze is written as a value too, not a delete, so the
// key's revisions keep who froze and who unfroze, when and why.
import { IDENTITY_SOURCES, MAX_IDENTITY_LENGTH, type Identity } from "./identity.js";
import { FREEZE_SCHEMA } from "./names.js";
import { asEnum, asIsoTime, asObject, asString, asStringArray, asToken, parseJson } from "./validate.js";
import { ValidationError } from "./errors.js";

/** The longest reason recorded (a freeze's, or a create's override of one). */
export const MAX_FREEZE_REASON = 1024;
/** The most weekly windows one freeze may have. */
export const MAX_FREEZE_WINDOWS = 28;

export interface FreezeRecord {
  schema: typeof FREEZE_SCHEMA;
  environment: string;
  /** A named freeze (its key is <environment>.<name>); absent: the environment's unnamed one. */
  name?: string;
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
  /** In force only within these weekly windows (canonical text: "fri 15:00-mon 08:00", "18:00-08:00" daily); absent: all the time. */
  windows?: string[];
  /** The IANA time zone the windows are read in; absent: UTC. */
  timeZone?: string;
}

/** The KV key of a freeze: its environment, and its name after a dot. */
export const freezeKey = (environment: string, name?: string): string => (name ? `${environment}.${name}` : environment);

export function freezeRecord(
  environment: string,
  frozen: boolean,
  reason: string,
  by: Identity,
  at: Date,
  more: { name?: string; until?: Date; windows?: string[]; timeZone?: string } = {},
): FreezeRecord {
  return {
    schema: FREEZE_SCHEMA,
    environment,
    ...(more.name ? { name: more.name } : {}),
    frozen,
    reason,
    by: { name: by.name, via: by.via },
    at: at.toISOString(),
    ...(frozen && more.until ? { until: more.until.toISOString() } : {}),
    ...(frozen && more.windows?.length ? { windows: more.windows, ...(more.timeZone && more.timeZone !== "UTC" ? { timeZone: more.timeZone } : {}) } : {}),
  };
}

/** Set and not ended: in force now, or at the next of its windows. */
export function freezeHolds(r: FreezeRecord | undefined, nowMs: number): boolean {
  return r !== undefined && r.frozen && (r.until === undefined || Date.parse(r.until) > nowMs);
}

/** Whether the record freezes its environment at `nowMs`: set, not ended, and (with windows) within one of them. */
export function freezeActive(r: FreezeRecord | undefined, nowMs: number): boolean {
  return r !== undefined && freezeHolds(r, nowMs) && (r.windows === undefined || inWindows(r.windows, r.timeZone ?? "UTC", nowMs));
}

// ---------------------------------------------------------------------------
// Weekly windows: "fri 15:00-mon 08:00" (from a day and time to a day and
// time, wrapping over the week's end), or "18:00-08:00" (every day, wrapping
// over midnight), read in the freeze's time zone (so a window follows its
// zone's daylight saving time). A time is minutes of the week from Monday
// 00:00; a window holds its start and not its end.

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
const WEEK = 7 * 24 * 60;
const WINDOW_RE = /^(?:(mon|tue|wed|thu|fri|sat|sun)\s+)?([01]?\d|2[0-3]):([0-5]\d)\s*-\s*(?:(mon|tue|wed|thu|fri|sat|sun)\s+)?([01]?\d|2[0-3]):([0-5]\d)$/i;

/** [start, end) spans in minutes of the week; a malformed window is a ValidationError naming `field`. */
function spansOf(window: string, field = "windows"): [number, number][] {
  const m = WINDOW_RE.exec(window.trim());
  if (!m) throw new ValidationError(field, `"${window.slice(0, 80)}" is not a window such as "fri 15:00-mon 08:00" or "18:00-08:00" (every day)`);
  const [, d1, h1, m1, d2, h2, m2] = m;
  if ((d1 === undefined) !== (d2 === undefined)) throw new ValidationError(field, `"${window}": give a day on both sides ("fri 15:00-mon 08:00") or on neither ("18:00-08:00": every day)`);
  const t1 = Number(h1) * 60 + Number(m1);
  const t2 = Number(h2) * 60 + Number(m2);
  if (d1 === undefined) {
    if (t1 === t2) throw new ValidationError(field, `"${window}" starts where it ends`);
    return DAYS.map((_, i) => [i * 1440 + t1, i * 1440 + t2 + (t2 < t1 ? 1440 : 0)]);
  }
  const s = DAYS.indexOf(d1.toLowerCase() as (typeof DAYS)[number]) * 1440 + t1;
  const e = DAYS.indexOf(d2!.toLowerCase() as (typeof DAYS)[number]) * 1440 + t2;
  if (s === e) throw new ValidationError(field, `"${window}" starts where it ends (a freeze all week needs no window)`);
  return [[s, e > s ? e : e + WEEK]];
}

/** The canonical text of a window ("Fri 15:00 - Mon 8:00" → "fri 15:00-mon 08:00"); throws ValidationError naming it. */
export function canonicalWindow(window: string, field = "windows"): string {
  spansOf(window, field);
  const m = WINDOW_RE.exec(window.trim())!;
  const t = (h: string, min: string): string => `${h.padStart(2, "0")}:${min}`;
  const day = (d: string | undefined): string => (d ? `${d.toLowerCase()} ` : "");
  return `${day(m[1])}${t(m[2]!, m[3]!)}-${day(m[4])}${t(m[5]!, m[6]!)}`;
}

/** Throws ValidationError (naming `field`) unless `tz` is an IANA time zone this runtime knows. */
export function checkTimeZone(tz: string, field = "time_zone"): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new ValidationError(field, `"${tz.slice(0, 80)}" is not an IANA time zone such as Europe/Berlin or UTC`);
  }
}

/** Minutes since Monday 00:00 in `timeZone` at `nowMs`. */
export function minuteOfWeek(nowMs: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(nowMs));
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "";
  const day = DAYS.indexOf(get("weekday").toLowerCase().slice(0, 3) as (typeof DAYS)[number]);
  return day * 1440 + Number(get("hour")) * 60 + Number(get("minute"));
}

export function inWindows(windows: readonly string[], timeZone: string, nowMs: number): boolean {
  const now = minuteOfWeek(nowMs, timeZone);
  // Every stored window passed canonicalWindow (parseFreezeRecord, validateFreeze).
  return windows.some((w) => spansOf(w).some(([s, e]) => (now >= s && now < e) || (now + WEEK >= s && now + WEEK < e)));
}

/** A stored freeze record; `key` is the KV key it was read under, which must be freezeKey(environment, name). */
export function parseFreezeRecord(data: Uint8Array, key: string): FreezeRecord {
  const o = asObject(parseJson(data, "freeze"), "freeze");
  if (o.schema !== FREEZE_SCHEMA) throw new ValidationError("freeze.schema", `expected ${FREEZE_SCHEMA}`);
  const environment = asToken(o.environment, "freeze.environment");
  const name = o.name === undefined ? undefined : asToken(o.name, "freeze.name");
  if (freezeKey(environment, name) !== key) throw new ValidationError("freeze.environment", `${freezeKey(environment, name)} stored under key ${key}`);
  if (typeof o.frozen !== "boolean") throw new ValidationError("freeze.frozen", "must be true or false");
  const by = asObject(o.by, "freeze.by");
  const windows = o.windows === undefined ? undefined : asStringArray(o.windows, "freeze.windows", (v, f) => canonicalWindow(asString(v, f, { maxLength: 64 }), f), MAX_FREEZE_WINDOWS);
  return {
    schema: FREEZE_SCHEMA,
    environment,
    ...(name ? { name } : {}),
    frozen: o.frozen,
    reason: asString(o.reason ?? "", "freeze.reason", { maxLength: MAX_FREEZE_REASON, allowEmpty: true }),
    by: { name: asString(by.name, "freeze.by.name", { maxLength: MAX_IDENTITY_LENGTH }), via: asEnum(by.via, "freeze.by.via", IDENTITY_SOURCES) },
    at: asIsoTime(o.at, "freeze.at"),
    ...(o.until === undefined ? {} : { until: asIsoTime(o.until, "freeze.until") }),
    ...(windows ? { windows } : {}),
    // Checked here too: a zone this runtime does not know (a value put with
    // the nats CLI) would make every create to the environment throw.
    ...(o.timeZone === undefined ? {} : { timeZone: zoneOf(asString(o.timeZone, "freeze.timeZone", { maxLength: 64 })) }),
  };
}

function zoneOf(tz: string): string {
  checkTimeZone(tz, "freeze.timeZone");
  return tz;
}

/** "every fri 15:00-mon 08:00 (Europe/Berlin)" */
export function windowsText(f: Pick<FreezeRecord, "windows" | "timeZone">): string {
  return f.windows?.length ? `every ${f.windows.join(", ")} (${f.timeZone ?? "UTC"})` : "";
}

/** How a freeze reads in a refusal: `frozen by alice at <time> until <time>: incident 42`, a named one `frozen ("weekends", every sat 00:00-mon 00:00 (UTC)) by …`. */
export function freezeText(f: FreezeRecord): string {
  const what = [f.name ? `"${f.name}"` : "", windowsText(f)].filter(Boolean).join(", ");
  return `frozen${what ? ` (${what})` : ""} by ${f.by.name} at ${f.at} ${f.until ? `until ${f.until}` : "until unfrozen"}: ${f.reason}`;
}

/**
 * A deployment created while its environment was frozen, by a request that
 * overrode the freeze (CreateDeploymentRequest.freeze_override_reason):
 * recorded in its spec, so the audit log keeps why, and which freeze.
 */
export interface FreezeOverride {
  reason: string;
  freeze: { reason: string; by: string; at: string; until?: string; name?: string };
}

export function freezeOverrideOf(reason: string, f: FreezeRecord): FreezeOverride {
  return { reason, freeze: { reason: f.reason, by: f.by.name, at: f.at, ...(f.until ? { until: f.until } : {}), ...(f.name ? { name: f.name } : {}) } };
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
      ...(f.name === undefined ? {} : { name: asToken(f.name, `${field}.freeze.name`) }),
    },
  };
}
