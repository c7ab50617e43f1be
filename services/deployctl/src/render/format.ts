// Small formatting helpers shared by the views: state names, colours,
// durations, sizes, aligned tables.
import pc from "picocolors";
import type { DeploymentMsg } from "../client.js";

type Timestamp = { seconds?: string | number; nanos?: number } | null | undefined;

export const TERMINAL_DEPLOYMENT_STATES = ["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"];
const TERMINAL_TARGET_STATES = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];

export function isTerminalDeployment(state: string | undefined): boolean {
  return TERMINAL_DEPLOYMENT_STATES.includes(state ?? "");
}

/** "DEPLOYMENT_STATE_RUNNING" / "TARGET_STATE_APPLYING" → "RUNNING" / "APPLYING". */
export function shortState(state: string | undefined): string {
  if (!state) return "-";
  return state.replace(/^(DEPLOYMENT|TARGET)_STATE_/, "");
}

export function isTerminalTarget(state: string | undefined): boolean {
  return TERMINAL_TARGET_STATES.includes(shortState(state));
}

export function colorState(state: string | undefined, text = shortState(state)): string {
  switch (shortState(state)) {
    case "SUCCEEDED":
      return pc.green(text);
    case "FAILED":
    case "TIMED_OUT":
      return pc.red(text);
    case "CANCELLED":
    case "SKIPPED":
      return pc.magenta(text);
    case "RUNNING":
    case "DISPATCHED":
    case "APPLYING":
      return pc.yellow(text);
    default:
      return pc.dim(text);
  }
}

/** "RELEASE_STATUS_OUTDATED" → "outdated"; no desired release: "none"; none at all: "-". */
export function releaseStatusText(status: string | undefined): string {
  if (!status || status === "RELEASE_STATUS_UNSPECIFIED") return "-";
  if (status === "RELEASE_STATUS_NO_DESIRED_RELEASE") return "none";
  return status.replace(/^RELEASE_STATUS_/, "").toLowerCase();
}

export function colorReleaseStatus(status: string | undefined, text = releaseStatusText(status)): string {
  switch (status) {
    case "RELEASE_STATUS_CURRENT":
      return pc.green(text);
    case "RELEASE_STATUS_OUTDATED":
      return pc.yellow(text);
    case "RELEASE_STATUS_OFFLINE":
      return pc.red(text);
    default:
      return pc.dim(text);
  }
}

export function tsMs(t: Timestamp): number | undefined {
  if (!t || t.seconds === undefined) return undefined;
  return Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export function clock(ms: number | undefined): string {
  if (ms === undefined) return "--:--:--.---";
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function isoTime(t: Timestamp): string {
  const ms = tsMs(t);
  return ms === undefined ? "-" : new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

export function duration(ms: number | undefined): string {
  if (ms === undefined || ms < 0) return "-";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000) ? `${Math.floor(ms / 60_000)}m` : ""}${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

/** `frozen by alice at <time> until <time> (1h59m left): incident 42` */
export function freezeLine(f: { by?: string; at?: Timestamp; until?: Timestamp; reason?: string; name?: string; windows?: string[]; timeZone?: string }, now = Date.now()): string {
  const end = tsMs(f.until);
  const until = end === undefined ? "until unfrozen" : `until ${isoTime(f.until)} (${duration(end - now)} left)`;
  const what = [f.name ? `"${f.name}"` : "", windowsLine(f)].filter(Boolean).join(", ");
  return `frozen${what ? ` (${what})` : ""} by ${f.by || "-"} at ${isoTime(f.at)} ${until}${f.reason ? `: ${f.reason}` : ""}`;
}

/** "every fri 15:00-mon 08:00 (Europe/Berlin)", or "" for a freeze in force all the time. */
export function windowsLine(f: { windows?: string[]; timeZone?: string }): string {
  return f.windows?.length ? `every ${f.windows.join(", ")} (${f.timeZone || "UTC"})` : "";
}

export function ago(t: Timestamp, now = Date.now()): string {
  const ms = tsMs(t);
  // A time a moment ahead of this machine's clock (the servers' clock set it) is "0.0s ago", not "- ago".
  return ms === undefined ? "never" : `${duration(Math.max(0, now - ms))} ago`;
}

export function bytes(n: number | string | undefined): string {
  const v = Number(n ?? 0);
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  if (v < 1024 ** 3) return `${(v / 1024 / 1024).toFixed(1)} MiB`;
  return `${(v / 1024 ** 3).toFixed(2)} GiB`;
}

export function shortDigest(digest: string | undefined): string {
  if (!digest) return "-";
  return digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, "$1…");
}

export function truncate(s: string, width: number): string {
  if (width <= 1) return "";
  return s.length > width ? `${s.slice(0, width - 1)}…` : s;
}

/** "3 of 3 target(s) succeeded" style count from Deployment.counts. */
export function countOf(d: DeploymentMsg, state: string): number {
  return (d.counts ?? []).find((c) => shortState(c.state) === state)?.count ?? 0;
}

/**
 * Rows aligned in columns; widths from the plain text, then `style` may
 * colour a cell (picocolors is a no-op when stdout is not a terminal).
 */
export function table(header: string[], rows: string[][], style?: (col: number, row: number, padded: string) => string): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[], row: number): string =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return row < 0 ? pc.bold(padded) : (style?.(i, row, padded) ?? padded);
      })
      .join("  ")
      .trimEnd();
  return [line(header, -1), ...rows.map((r, i) => line(r, i))].join("\n");
}
