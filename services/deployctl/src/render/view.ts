// What following a deployment shows: the interface the three views share,
// and the choice between them.
import type { ArtifactMsg, DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { JsonView } from "./json.js";
import { PlainView } from "./plain.js";
import { TtyView } from "./tty.js";

export interface FollowView {
  /** Following starts: the current state, and the sequence events resume after. */
  begin(d: DeploymentMsg, afterSequence: number): void;
  event(e: DeploymentEventMsg): void;
  /** The watch broke and is being resumed. */
  reconnecting(reason: string, afterSequence: number): void;
  /** The deployment is terminal: its final state. */
  end(d: DeploymentMsg): void;
  /** Ctrl-C: leave the terminal tidy; nothing more is drawn. */
  interrupt(): void;
  /** The command is done with the view, however it ended (--json prints its one document now). */
  close(): void;
}

/** What deploy learns before following, for the --json document. */
export interface DeployFacts {
  requestId?: string;
  artifact?: ArtifactMsg;
  deployment?: DeploymentMsg;
  /** deploy --dry-run: `deployment` is what it would be; nothing was created. */
  dryRun?: boolean;
}

/** Lines before following starts (packing, upload, creation): text for people (stderr with --json), facts for the document. */
export interface Notes {
  note(text: string, facts?: DeployFacts): void;
}

export function chooseView(json: boolean, stream: NodeJS.WriteStream = process.stdout, errStream: NodeJS.WriteStream = process.stderr): FollowView & Notes {
  if (json) return new JsonView(stream, errStream);
  if (stream.isTTY && process.env.TERM !== "dumb") return new TtyView(stream);
  return new PlainView(stream);
}
