// deployctl rollback <app> <env> [--to <deployment id|version>]:
// RollbackRelease, then following the new deployment as deploy does. The
// coordinator picks the release before the desired one (or the one --to
// names from the history) and the agents the desired one covered; the
// rollback becomes the desired release when it succeeds (so a second
// rollback undoes it).
import { randomUUID } from "node:crypto";
import type { ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { chooseView } from "../render/view.js";
import { defaultRequestedBy } from "./deploy.js";
import { createWhenFree, type BusyOptions } from "./busy.js";
import { detachOrFollow, restoredText } from "./following.js";
import { checkStrategy, strategyOf, type StrategyOptions } from "./strategy.js";

export interface RollbackOptions extends CommonOptions, StrategyOptions, BusyOptions {
  requestId?: string;
  note?: string;
  detach?: boolean;
  to?: string;
}

export async function rollbackCommand(app: string, env: string, o: RollbackOptions): Promise<ExitCode> {
  checkStrategy(o);
  const view = chooseView(o.json === true);
  const client = clientFor(o);
  try {
    // Printed before the call, as deploy does: the same command with this id is answered with the same deployment.
    const requestId = o.requestId ?? randomUUID();
    view.note(`request id ${requestId} (to retry safely, re-run with --request-id ${requestId})`, { requestId });
    const request = { requestId, app, environment: env, strategy: strategyOf(o), requestedBy: o.note ?? defaultRequestedBy(), ...(o.to ? { to: o.to } : {}) };
    const d = await createWhenFree(client, view, o, `deployctl rollback of ${app} in ${env} (request ${requestId})`, () => client.rollbackRelease(request));
    view.note(
      `deployment ${d.id ?? "?"}: rollback of ${d.app ?? app} in ${d.environment ?? env} to ${d.restores?.version ?? d.changeset?.version ?? "?"}${restoredText(d)}, ${d.targets?.length ?? 0} target(s)`,
      { deployment: d },
    );
    return await detachOrFollow(client, view, d, o);
  } finally {
    view.close();
    client.close();
  }
}
