// On a terminal: a live view redrawn in place by log-update, one row per
// target (state, elapsed time, last output line) under an overall progress
// line. Redrawn on each event and every 500 ms for the elapsed times.
import { createLogUpdate } from "log-update";
import pc from "picocolors";
import type { DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { describeDeployment } from "./deployment.js";
import { colorState, duration, isTerminalTarget, shortState, table, truncate, tsMs } from "./format.js";
import { eventMessage } from "./plain.js";
import type { FollowView, Notes } from "./view.js";

interface Row {
  agentId: string;
  state: string;
  startedAt?: number;
  finishedAt?: number;
  lastOutput: string;
  message: string;
}

const REDRAW_MS = 500;

export class TtyView implements FollowView, Notes {
  readonly #log: ReturnType<typeof createLogUpdate>;
  #rows = new Map<string, Row>();
  #d: DeploymentMsg = {};
  #state = "";
  #message = "";
  #snapshotSeq = 0;
  #began = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #note = "";
  /** Why nothing new is dispatched although the deployment runs (shown beside its state). */
  #paused = false;
  #awaitingPromotion = false;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.#log = createLogUpdate(out, { showCursor: false });
  }

  note(text: string): void {
    this.out.write(text + "\n");
  }

  begin(d: DeploymentMsg, _afterSequence: number): void {
    this.#d = d;
    this.#state = d.state ?? "";
    this.#message = d.message ?? "";
    this.#paused = d.paused === true;
    this.#awaitingPromotion = d.awaitingPromotion === true;
    if (d.paused) this.#message = `paused by ${d.pausedBy || "-"} (deployctl resume ${d.id ?? ""})`;
    // The snapshot already reflects events up to last_sequence: replayed
    // ones before it must not move rows backwards.
    this.#snapshotSeq = Number(d.lastSequence ?? 0);
    this.#began = tsMs(d.createdAt) ?? Date.now();
    for (const t of d.targets ?? []) {
      this.#rows.set(t.agentId ?? "?", {
        agentId: t.agentId ?? "?",
        state: t.state ?? "",
        startedAt: tsMs(t.startedAt) ?? tsMs(t.dispatchedAt),
        finishedAt: tsMs(t.finishedAt),
        lastOutput: t.lastOutput ?? "",
        message: t.message ?? "",
      });
    }
    this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
    this.#draw();
  }

  event(e: DeploymentEventMsg): void {
    this.#note = "";
    if (Number(e.sequence ?? 0) <= this.#snapshotSeq) return;
    const at = tsMs(e.time) ?? Date.now();
    if (e.deploymentState) this.#state = e.deploymentState;
    if (e.type === "deployment.finished" || e.type === "deployment.halted") this.#message = e.message ?? this.#message;
    // An operator's decision, or the canary wave waiting for one: the line under the table says which, and what to run.
    if (e.type === "deployment.canary_done" || e.type === "deployment.paused" || e.type === "deployment.resumed" || e.type === "deployment.promoted") {
      this.#message = eventMessage(e);
    }
    if (e.type === "deployment.paused" || e.type === "deployment.resumed") this.#paused = e.type === "deployment.paused";
    if (e.type === "deployment.canary_done" || e.type === "deployment.promoted") this.#awaitingPromotion = e.type === "deployment.canary_done";
    if (e.type === "deployment.finished") this.#paused = this.#awaitingPromotion = false;
    for (const agentId of e.agentIds ?? []) {
      // targets.dispatched, or a created event that dispatched: several targets in one event.
      const row = this.#rows.get(agentId) ?? { agentId, state: "", lastOutput: "", message: "" };
      this.#rows.set(agentId, row);
      if (row.state === "" || row.state === "TARGET_STATE_PENDING") {
        row.state = "TARGET_STATE_DISPATCHED";
        row.startedAt ??= at;
      }
    }
    if (e.agentId) {
      const row = this.#rows.get(e.agentId) ?? { agentId: e.agentId, state: "", lastOutput: "", message: "" };
      this.#rows.set(e.agentId, row);
      if (e.targetState) row.state = e.targetState;
      // Elapsed counts from dispatch until the apply starts, then from its start (as GetDeployment's times do).
      if ((e.type === "target.dispatched" && row.startedAt === undefined) || e.type === "target.started") row.startedAt = at;
      if (isTerminalTarget(row.state) && row.finishedAt === undefined) row.finishedAt = at;
      const last = e.lines?.at(-1);
      if (last !== undefined) row.lastOutput = last;
      if (e.message && e.type !== "target.progress") row.message = e.message;
    }
    this.#draw();
  }

  reconnecting(reason: string, afterSequence: number): void {
    this.#note = `connection lost (${reason}); resuming after event #${afterSequence}…`;
    this.#draw();
  }

  end(d: DeploymentMsg): void {
    this.#stopTimer();
    this.#log.clear();
    this.out.write(describeDeployment(d, this.out.columns || 120) + "\n");
  }

  interrupt(): void {
    this.#stopTimer();
    this.#draw();
    this.#log.done();
  }

  close(): void {
    // An error ended following: stop redrawing, keep the last frame, show the cursor.
    if (this.#timer) this.interrupt();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #draw(): void {
    const width = this.out.columns || 120;
    const height = this.out.rows || 24;
    const rows = [...this.#rows.values()];
    const done = rows.filter((r) => isTerminalTarget(r.state)).length;
    const failed = rows.filter((r) => ["FAILED", "TIMED_OUT"].includes(shortState(r.state))).length;
    const barWidth = 20;
    const filled = rows.length ? Math.round((done / rows.length) * barWidth) : 0;
    const bar = pc.green("█".repeat(filled)) + pc.dim("░".repeat(barWidth - filled));
    const d = this.#d;
    const head =
      `${pc.bold(d.id ?? "?")}  ${d.app ?? "?"} ${d.changeset?.version ?? ""} → ${d.environment ?? "?"}  ${colorState(this.#state)}${this.#paused ? pc.magenta(" (paused)") : this.#awaitingPromotion ? pc.magenta(" (awaiting promotion)") : ""}  ` +
      `${bar} ${done}/${rows.length} done${failed ? pc.red(`, ${failed} failed`) : ""}  ${duration(Date.now() - this.#began)}`;
    const now = Date.now();
    // Leave room for the header, the table header, a message and a "more" line.
    const room = Math.max(3, height - 5);
    const shown = rows.slice(0, room);
    const cells = shown.map((r) => [
      r.agentId,
      shortState(r.state),
      duration(r.startedAt === undefined ? undefined : (r.finishedAt ?? now) - r.startedAt),
      r.lastOutput || (isTerminalTarget(r.state) ? r.message : ""),
    ]);
    const fixed = Math.max(...cells.map((c) => c[0]!.length), 6) + 10 + 7 + 8;
    for (const c of cells) c[3] = truncate(c[3]!, Math.max(10, width - fixed));
    const body = table(["TARGET", "STATE", "ELAPSED", "LAST OUTPUT"], cells, (col, row, padded) => (col === 1 ? colorState(shown[row]!.state, padded) : padded));
    const lines = [head, body];
    if (rows.length > shown.length) lines.push(pc.dim(`… and ${rows.length - shown.length} more target(s)`));
    if (this.#message) lines.push(truncate(this.#message, width));
    if (this.#note) lines.push(pc.yellow(truncate(this.#note, width)));
    this.#log(lines.join("\n"));
  }
}
