// deployctl cancel <id> [--kill] [--revert]: stop dispatching. Targets not
// yet started become CANCELLED; in-flight applies finish and are reported,
// or with --kill are killed (their agents look for it every
// DEPLOY_AGENT_KILL_LOOK_MS while they apply) and end FAILED. With --revert
// the targets it changed are then brought back to the release desired
// before it, by a linked deployment (reverted_by) the coordinator makes
// once the deployment is CANCELLED. Safe to repeat; --kill or --revert after
// a plain cancel adds them.
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { isTerminalDeployment, shortState } from "../render/format.js";
import { jsonDocument } from "../render/json.js";

export interface CancelOptions extends CommonOptions {
  reason?: string;
  kill?: boolean;
  revert?: boolean;
}

export async function cancelCommand(id: string, o: CancelOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const before = await client.getDeployment(id);
    const d = await client.cancelDeployment(id, o.reason ?? "", o.kill === true, o.revert === true);
    const to = d.cancelRevertsTo;
    const revert = to ? `; then the targets it changed go back to ${to.version ?? "?"} (release ${to.release ?? "?"})${d.revertedBy ? `: deployment ${d.revertedBy}` : ""}` : "";
    if (o.json) process.stdout.write(jsonDocument("deploy.v1.Deployment", d));
    else if (isTerminalDeployment(before.state)) process.stdout.write(`${id} was already ${shortState(before.state)}: nothing to cancel${revert}\n`);
    else {
      process.stdout.write(
        `cancel requested for ${id}: now ${shortState(d.state)}; targets not yet started are cancelled, ` +
          `${o.kill ? "in-flight applies are killed (a bundle goes back to its previous release) and end FAILED" : "in-flight applies finish (--kill stops them)"}${revert}. ` +
          `Follow with: deployctl watch ${id}${to ? " (it names the revert deployment once it ends)" : ""}\n`,
      );
    }
    return EXIT.OK;
  } finally {
    client.close();
  }
}
