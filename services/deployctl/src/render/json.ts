// --json: stdout carries exactly one JSON document per command, in the
// canonical proto3 JSON mapping (protoJson.ts), so JSON.parse or jq reads it
// whole. What people read while deployctl works (packing, the upload, the
// request id, reconnects) goes to stderr.
//
// deploy and watch print their document once following is over:
//   requestId   deploy only: the idempotency key sent (also on stderr, before creation)
//   artifact    deploy with a bundle only: the uploaded Artifact
//   deployment  the Deployment: final (what `get --json` prints) when it ended;
//               as created with --detach; as last read when following stopped early
//   events      the DeploymentEvents received while following, in order
//   following   "ended" | "detached" | "stopped" (Ctrl-C or the coordinator lost:
//               stderr says which, and the exit code is 130 or 3) | "dry-run"
//               (deploy --dry-run: the deployment it would be, without an id;
//               nothing was uploaded or created)
import type { ArtifactMsg, DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { toProto3Json, type JsonObject, type PrintedType } from "./protoJson.js";
import type { DeployFacts, FollowView, Notes } from "./view.js";

/** One message as the whole --json output of a command. */
export function jsonDocument(type: PrintedType, message: object): string {
  return JSON.stringify(toProto3Json(type, message)) + "\n";
}

export interface FollowDocument {
  requestId?: string;
  artifact?: JsonObject;
  deployment: JsonObject;
  events: JsonObject[];
  following: "ended" | "detached" | "stopped" | "dry-run";
}

export class JsonView implements FollowView, Notes {
  #requestId: string | undefined;
  #artifact: ArtifactMsg | undefined;
  #deployment: DeploymentMsg | undefined;
  readonly #events: DeploymentEventMsg[] = [];
  #following: FollowDocument["following"] = "detached";
  #printed = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
  ) {}

  note(text: string, facts: DeployFacts = {}): void {
    this.err.write(text + "\n");
    this.#requestId = facts.requestId ?? this.#requestId;
    this.#artifact = facts.artifact ?? this.#artifact;
    this.#deployment = facts.deployment ?? this.#deployment;
    if (facts.dryRun) this.#following = "dry-run";
  }
  begin(d: DeploymentMsg, _afterSequence: number): void {
    this.#deployment = d;
    this.#following = "stopped"; // until end() says otherwise
  }
  event(e: DeploymentEventMsg): void {
    this.#events.push(e);
  }
  reconnecting(reason: string, afterSequence: number): void {
    this.err.write(`watch interrupted (${reason}); resuming after event #${afterSequence}\n`);
  }
  end(d: DeploymentMsg): void {
    this.#deployment = d;
    this.#following = "ended";
  }
  interrupt(): void {
    // The document is printed by close(), with following "stopped".
  }
  close(): void {
    if (this.#printed || !this.#deployment) return; // nothing was created: the error on stderr is all there is
    this.#printed = true;
    const doc: FollowDocument = {
      ...(this.#requestId ? { requestId: this.#requestId } : {}),
      ...(this.#artifact ? { artifact: toProto3Json("deploy.v1.Artifact", this.#artifact) } : {}),
      deployment: toProto3Json("deploy.v1.Deployment", this.#deployment),
      events: this.#events.map((e) => toProto3Json("deploy.v1.DeploymentEvent", e)),
      following: this.#following,
    };
    this.out.write(JSON.stringify(doc) + "\n");
  }
}
