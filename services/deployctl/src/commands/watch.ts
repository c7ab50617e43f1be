// deployctl watch <id>: follow a deployment from the last event printed here.
import type { ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { chooseView } from "../render/view.js";
import { FollowState } from "../state.js";
import { followToExit } from "./following.js";

export interface WatchOptions extends CommonOptions {
  /** Show events after this sequence (default: after the last one deployctl printed for this id, else all). */
  after?: number;
}

export async function watchCommand(id: string, o: WatchOptions): Promise<ExitCode> {
  const view = chooseView(o.json === true);
  const after = o.after ?? new FollowState(id).load();
  const client = clientFor(o);
  try {
    const d = await client.getDeployment(id);
    return await followToExit(client, view, d, after, o.coordinator);
  } finally {
    view.close();
    client.close();
  }
}
