// A deployment as text: the summary `get` prints and follow ends with.
import pc from "picocolors";
import type { DeploymentMsg } from "../client.js";
import { colorState, countOf, duration, freezeLine, isTerminalDeployment, isTerminalTarget, isoTime, shortDigest, shortState, table, tsMs, truncate } from "./format.js";
import { durationJson, type SecondsNanos } from "./protoJson.js";

type TargetMsg = NonNullable<DeploymentMsg["targets"]>[number];

export function targetElapsed(t: TargetMsg, now = Date.now()): number | undefined {
  const start = tsMs(t.startedAt) ?? tsMs(t.dispatchedAt);
  if (start === undefined) return undefined;
  return (isTerminalTarget(t.state) ? (tsMs(t.finishedAt) ?? now) : now) - start;
}

export function targetStateText(t: { state?: string; rolledBack?: boolean }): string {
  return shortState(t.state) + (t.rolledBack ? " (rolled back)" : "");
}

export function targetTable(d: DeploymentMsg, width = 160): string {
  const rows = (d.targets ?? []).map((t) => [t.agentId ?? "-", targetStateText(t), duration(targetElapsed(t)), truncate(t.message || "-", 48), t.lastOutput || ""]);
  // Whatever the other columns leave (with the two-space indent and gaps) goes to the last output.
  const used = [0, 1, 2, 3].reduce((n, i) => n + Math.max(...rows.map((r) => r[i]!.length), 7) + 2, 2);
  for (const r of rows) r[4] = truncate(r[4]!, Math.max(20, width - used));
  const states = (d.targets ?? []).map((t) => t.state);
  return table(["TARGET", "STATE", "ELAPSED", "MESSAGE", "LAST OUTPUT"], rows, (col, row, padded) => (col === 1 ? colorState(states[row], padded) : padded));
}

/** One line: "SUCCEEDED: 3 of 3 target(s) succeeded". */
export function outcomeLine(d: DeploymentMsg): string {
  // targets holds a page of them (the first 1,000 by default); target_count all.
  const total = d.targetCount || (d.targets?.length ?? 0);
  return `${colorState(d.state)}${d.message ? `: ${d.message}` : ` (${countOf(d, "SUCCEEDED")} of ${total} target(s) succeeded)`}`;
}

/** "requested by ci (note: alice@laptop (deployctl))": the authenticated identity, and the client's note apart. */
export function requestedByText(d: Pick<DeploymentMsg, "requestedBy" | "requestedByNote">): string {
  return `requested by ${d.requestedBy || "-"}${d.requestedByNote ? ` (note: ${d.requestedByNote})` : ""}`;
}

/** "3 succeeded, 99997 skipped": every target counted by state, whatever page of them the message holds. */
function countsText(d: DeploymentMsg): string {
  return (d.counts ?? []).map((c) => `${c.count ?? 0} ${shortState(c.state).toLowerCase()}`).join(", ") || "-";
}

/** "2", or "2 (50%)" when given as a percentage of the targets. */
const amount = (count: number | undefined, percent: string | undefined): string => `${count ?? "-"}${percent ? ` (${percent})` : ""}`;

/** A strategy duration as proto3 JSON writes it ("600s", "1.500s"): a sub-second one is not shown as 0 or "-". */
const secs = (x: SecondsNanos | undefined): string => (x?.seconds || x?.nanos ? durationJson(x) : "-");

/** The strategy as one line: the fields every deployment has, then the canary wave, auto_revert and max_pause when set. */
export function strategyText(s: NonNullable<DeploymentMsg["strategy"]>): string {
  const parts = [
    `max_concurrency ${amount(s.maxConcurrency, s.maxConcurrencyPercent)}`,
    `max_failures ${amount(s.maxFailures, s.maxFailuresPercent)}`,
    `delivery_timeout ${secs(s.deliveryTimeout)}`,
    `apply_timeout ${secs(s.applyTimeout)}`,
    ...(s.canary ? [`canary ${amount(s.canary, s.canaryPercent)}${s.canarySoak ? ` (soak ${secs(s.canarySoak)})` : ""}`] : []),
    ...(s.soak?.seconds || s.soak?.nanos ? [`soak ${secs(s.soak)}`] : []),
    ...(s.autoRevert ? ["auto_revert"] : []),
    ...(s.onlyOutdated ? ["only_outdated"] : []),
    ...(s.ignoreStopFailures ? ["ignore_stop_failures"] : []),
    // The default (24 h) only beside a canary wave, which waits; a coordinator from before max_pause sends none.
    ...(s.maxPause?.seconds && (s.canary || s.maxPause.seconds !== "86400") ? [`max_pause ${secs(s.maxPause)}`] : []),
  ];
  return parts.join(", ");
}

/**
 * The canary wave, pause, promote and revert facts of a deployment, one
 * line each (none for a deployment without them), with the command that
 * moves a waiting deployment on.
 */
export function operatorLines(d: DeploymentMsg): string[] {
  const id = d.id ?? "?";
  const terminal = isTerminalDeployment(d.state);
  const lines: string[] = [];
  if ((d.canaryTargets ?? []).length > 0) {
    let status = "";
    if (d.promotedBy) status = `promoted by ${d.promotedBy}`;
    else if (d.awaitingPromotion) {
      status = d.promoteAt ? `succeeded; promotes by itself at ${isoTime(d.promoteAt)} (or now: deployctl promote ${id})` : `succeeded; awaiting promotion: deployctl promote ${id}`;
    } else if (!terminal) status = "running";
    else status = "not promoted";
    lines.push(`  canary ${d.canaryTargets!.join(", ")}: ${pc.magenta(status)}`);
  }
  if (d.paused) lines.push(`  ${pc.magenta(`paused by ${d.pausedBy || "-"}`)}: running applies go on, nothing new starts; resume with: deployctl resume ${id}`);
  const r = d.restores;
  const restored = r?.release ? `${r.version ?? "?"} (release ${r.release}, from ${r.deploymentId || "-"})` : "";
  if (d.reverts) lines.push(`  revert of ${d.reverts}: brings its changed targets back to ${restored || "-"}`);
  else if (restored) lines.push(`  rollback: restores ${restored}`);
  const p = d.promotedFrom;
  if (p?.environment) lines.push(`  promoted from ${p.environment}: its desired release ${p.version ?? "?"} (${promotedDetail(p)})`);
  const back = d.cancelRevertsTo;
  if (back?.release && !d.revertedBy) lines.push(`  cancelled with revert: its changed targets go back to ${back.version ?? "?"} (release ${back.release}) once it ends`);
  if (d.revertedBy) {
    const how = back?.release ? "cancel --revert" : shortState(d.state) === "FAILED" && d.strategy?.autoRevert ? "auto_revert" : "deployctl revert";
    lines.push(`  reverted by ${d.revertedBy} (${how}); follow it with: deployctl watch ${d.revertedBy}`);
  }
  const fo = d.freezeOverride;
  if (fo?.freeze) lines.push(`  ${pc.magenta("deployed through a freeze")} (${freezeLine(fo.freeze)}), by ${d.requestedBy || "-"}: ${fo.reason ?? ""}`);
  const left = d.cordonedLeftOut ?? [];
  const leftCount = d.cordonedLeftOutCount ?? left.length;
  if (leftCount > 0) lines.push(`  left out, cordoned at creation: ${left.join(", ")}${leftCount > left.length ? ` and ${leftCount - left.length} more` : ""}`);
  return lines;
}

export function describeDeployment(d: DeploymentMsg, width = process.stdout.columns || 160): string {
  const s = d.strategy ?? {};
  const artifact = d.changeset?.artifact?.name ? `${d.changeset.artifact.name}@${shortDigest(d.changeset.artifact.digest)}` : "none (app's deploy executable)";
  const lines = [
    `${pc.bold(`deployment ${d.id ?? "?"}`)}  ${outcomeLine(d)}${d.cancelRequested && shortState(d.state) === "RUNNING" ? pc.magenta(" (cancel requested)") : ""}`,
    `  app ${d.app ?? "-"}  env ${d.environment ?? "-"}  version ${d.changeset?.version ?? "-"}  artifact ${artifact}`,
    ...(d.selector ? [`  targets chosen by selector ${d.selector}`] : []),
    ...(d.convergesTo ? [`  convergence: brings ${(d.targets ?? []).map((t) => t.agentId).join(", ") || "-"} to the desired release of ${d.convergesTo}`] : []),
    `  request ${d.requestId ?? "-"}  ${requestedByText(d)}`,
    ...(d.cancelRequested
      ? [
          `  cancel requested by ${d.cancelledBy || "-"}${d.killRequested ? ", with kill_running (the applies in flight are killed)" : ""}` +
            `${d.cancelRevertsTo?.release ? `${d.killRequested ? " and" : ","} with revert (to ${d.cancelRevertsTo.release})` : ""}`,
        ]
      : []),
    `  created ${isoTime(d.createdAt)}  finished ${isoTime(d.finishedAt)}  last event #${d.lastSequence ?? "0"}`,
    `  strategy ${strategyText(s)}`,
    `  targets ${d.targetCount || (d.targets?.length ?? 0)}: ${countsText(d)}`,
    ...operatorLines(d),
    "",
    targetTable(d, width)
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n"),
    ...lateResultLines(d),
  ];
  return lines.join("\n");
}

/**
 * A result that came after its target was already terminal (TIMED_OUT:
 * an agent that came back after a crash and reported the apply interrupted,
 * and what it did to go back), which the target's state does not show.
 */
export function lateResultLines(d: DeploymentMsg): string[] {
  return (d.targets ?? []).filter((t) => t.lateResult).map((t) => `  ${t.agentId ?? "-"}: result after it was ${shortState(t.state)}: ${t.lateResult}`);
}

/** "release v2-1a2b3c4d, deployment d-…, artifact sha256:…, succeeded there <time>": what Deployment.promoted_from names. */
export function promotedDetail(p: NonNullable<DeploymentMsg["promotedFrom"]>): string {
  const at = isoTime(p.succeededAt);
  return `release ${p.release || "?"}, deployment ${p.deploymentId || "?"}${p.artifact?.digest ? `, artifact ${p.artifact.digest}` : ", no bundle"}${at !== "-" ? `, succeeded there ${at}` : ""}`;
}
