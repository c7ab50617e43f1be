// Not a terminal (CI logs, pipes): one line per event, then the summary.
import type { DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { describeDeployment } from "./deployment.js";
import { clock, shortState, tsMs } from "./format.js";
import type { FollowView, Notes } from "./view.js";

export function eventLine(e: DeploymentEventMsg): string[] {
  const state = e.agentId ? shortState(e.targetState) : shortState(e.deploymentState);
  const head = `${clock(tsMs(e.time))} ${`#${e.sequence ?? "?"}`.padStart(5)} ${(e.type ?? "?").padEnd(27)} ${(e.agentId || "-").padEnd(10)} ${state.padEnd(10)}`;
  const lines = e.lines ?? [];
  if (lines.length > 0) return lines.map((l) => `${head} | ${l}`);
  return [`${head} ${e.message ?? ""}`.trimEnd()];
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
    this.#print(`following ${d.id ?? "?"} (${d.app ?? "?"} ${d.changeset?.version ?? ""} to ${d.environment ?? "?"}, ${d.targets?.length ?? 0} target(s))${from}`);
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
