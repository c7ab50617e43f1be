// --json: one JSON object per line on stdout. Every line has a `type`:
// the server's event types (deployment.created, target.progress, ...) as
// WatchDeployment sends them, and deployctl's own records
// (deployctl.request, deployctl.artifact, deployctl.created,
// deployctl.reconnecting, deployctl.result, deployctl.interrupted).
import type { DeploymentEventMsg, DeploymentMsg } from "../client.js";
import type { FollowView, Notes } from "./view.js";

/** proto-loader marks proto3 `optional` fields with synthetic "_<field>" oneof keys: not data, left out. */
const dropSynthetic = (key: string, value: unknown): unknown => (key.startsWith("_") ? undefined : value);

export function jsonLine(value: unknown): string {
  return JSON.stringify(value, dropSynthetic) + "\n";
}

export class JsonView implements FollowView, Notes {
  #id = "";
  #last = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}

  note(_text: string, record: Record<string, unknown> & { type: string }): void {
    this.out.write(jsonLine(record));
  }
  begin(d: DeploymentMsg, afterSequence: number): void {
    this.#id = d.id ?? "";
    this.#last = afterSequence;
  }
  event(e: DeploymentEventMsg): void {
    this.#last = Number(e.sequence ?? this.#last);
    this.out.write(jsonLine(e));
  }
  reconnecting(reason: string, afterSequence: number): void {
    this.out.write(jsonLine({ type: "deployctl.reconnecting", deploymentId: this.#id, reason, afterSequence }));
  }
  end(d: DeploymentMsg): void {
    this.out.write(jsonLine({ type: "deployctl.result", deployment: d }));
  }
  interrupt(): void {
    this.out.write(jsonLine({ type: "deployctl.interrupted", deploymentId: this.#id, lastSequence: this.#last }));
  }
}
