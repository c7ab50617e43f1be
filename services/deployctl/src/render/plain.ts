// Not a terminal (CI logs, pipes): one line per event, then the summary.
import type { DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { describeDeployment } from "./deployment.js";
import { clock, shortState, tsMs } from "./format.js";
import type { FollowView, Notes } from "./view.js";

/**
 * What an event says, for people. An operator's decision names who made it
 * (the event's actor) and what comes next, so a follower paused or waiting
 * for a promote knows why nothing moves and which command moves it.
 */
export function eventMessage(e: DeploymentEventMsg): string {
  const id = e.deploymentId ?? "";
  switch (e.type) {
    case "deployment.paused":
      return `paused by ${e.actor || "-"}${e.message ? `: ${e.message}` : ""}; running applies go on, nothing new starts (deployctl resume ${id})`;
    // These carry no message of their own: one is only "no effect: …" (a decision that lost a race).
    case "deployment.resumed":
      return e.message ? `resumed by ${e.actor || "-"} (${e.message})` : `resumed by ${e.actor || "-"}`;
    case "deployment.promoted":
      if (e.message) return `promoted by ${e.actor || "-"} (${e.message})`;
      return e.actor === "canary_soak" ? "promoted by canary_soak (every canary succeeded and soaked): going on to every target" : `promoted by ${e.actor || "-"}: going on to every target`;
    default:
      // deployment.canary_done: "canary wave of 1 succeeded; waiting for a promote (deployctl promote d-…)"
      return e.message ?? "";
  }
}

export function eventLine(e: DeploymentEventMsg): string[] {
  const state = e.agentId ? shortState(e.targetState) : shortState(e.deploymentState);
  const head = `${clock(tsMs(e.time))} ${`#${e.sequence ?? "?"}`.padStart(5)} ${(e.type ?? "?").padEnd(27)} ${(e.agentId || "-").padEnd(10)} ${state.padEnd(10)}`;
  const lines = e.lines ?? [];
  if (lines.length > 0) return lines.map((l) => `${head} | ${l}`);
  return [`${head} ${eventMessage(e)}`.trimEnd()];
}

/** ", reverting d-… (auto_revert)" / ", restoring release …": what a revert or rollback is, on the line following starts with. */
export function linkText(d: DeploymentMsg): string {
  if (d.reverts) return `, auto_revert of ${d.reverts}`;
  if (d.restores?.release) return `, rollback to ${d.restores.version ?? "?"} (release ${d.restores.release})`;
  if (d.promotedFrom?.environment) return `, promoted from ${d.promotedFrom.environment} (release ${d.promotedFrom.release ?? "?"})`;
  return "";
}

export class PlainView implements FollowView, Notes {
  constructor(private readonly out: NodeJS.WritableStream) {}

  #print(s: string): void {
    this.out.write(s + "\n");
  }
  note(text: string): void {
    this.#print(text);
  }
  begin(d: DeploymentMsg, afterSequence: number): void {
    const from = afterSequence > 0 ? ` after event #${afterSequence}` : "";
    this.#print(`following ${d.id ?? "?"} (${d.app ?? "?"} ${d.changeset?.version ?? ""} to ${d.environment ?? "?"}, ${d.targets?.length ?? 0} target(s)${linkText(d)})${from}`);
  }
  event(e: DeploymentEventMsg): void {
    for (const l of eventLine(e)) this.#print(l);
  }
  reconnecting(reason: string, afterSequence: number): void {
    this.#print(`watch interrupted (${reason}); resuming after event #${afterSequence}`);
  }
  end(d: DeploymentMsg): void {
    this.#print("");
    this.#print(describeDeployment(d, 160));
  }
  interrupt(): void {
    // Nothing drawn in place: nothing to tidy.
  }
  close(): void {
    // Every line is out already.
  }
}
