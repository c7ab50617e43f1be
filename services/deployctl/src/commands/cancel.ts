// deployctl cancel <id>: stop dispatching. Targets not yet started become
// CANCELLED; in-flight applies finish and are reported. Safe to repeat.
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { isTerminalDeployment, shortState } from "../render/format.js";
import { jsonDocument } from "../render/json.js";

export interface CancelOptions extends CommonOptions {
  reason?: string;
}

export async function cancelCommand(id: string, o: CancelOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const before = await client.getDeployment(id);
    const d = await client.cancelDeployment(id, o.reason ?? "");
    if (o.json) process.stdout.write(jsonDocument("deploy.v1.Deployment", d));
    else if (isTerminalDeployment(before.state)) process.stdout.write(`${id} was already ${shortState(before.state)}: nothing to cancel\n`);
    else {
      process.stdout.write(
        `cancel requested for ${id}: now ${shortState(d.state)}; targets not yet started are cancelled, in-flight applies finish. ` +
          `Follow with: deployctl watch ${id}\n`,
      );
    }
    return EXIT.OK;
  } finally {
    client.close();
  }
}
