// deployctl revert <id>: RevertDeployment, then following the revert as
// deploy does. For a deployment that ended FAILED or CANCELLED without a
// revert (no --auto-revert, a cancel without --revert): the targets it
// changed go back to the release desired before it. At most one revert per
// deployment on the coordinator (its request id is fixed), so re-running the
// command, or running it after auto_revert made one, follows that one.
import type { ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { chooseView } from "../render/view.js";
import { defaultRequestedBy } from "./deploy.js";
import { createWhenFree, type BusyOptions } from "./busy.js";
import { detachOrFollow, restoredText } from "./following.js";

export interface RevertOptions extends CommonOptions, BusyOptions {
  note?: string;
  detach?: boolean;
}

export async function revertCommand(id: string, o: RevertOptions): Promise<ExitCode> {
  const view = chooseView(o.json === true);
  const client = clientFor(o);
  try {
    const d = await createWhenFree(client, view, o, `deployctl revert of ${id}`, () => client.revertDeployment(id, o.note ?? defaultRequestedBy()));
    view.note(`deployment ${d.id ?? "?"}: revert of ${id}, ${d.targets?.length ?? 0} target(s) back to ${d.restores?.version ?? d.changeset?.version ?? "?"}${restoredText(d)}`, { deployment: d });
    return await detachOrFollow(client, view, d, o);
  } finally {
    view.close();
    client.close();
  }
}
