// deployctl cordon | uncordon <agent>: take an agent out of new deployments
// (a VM in maintenance) and let it take them again. Both are idempotent on
// the coordinator (asking for what is already so writes nothing), so safe to
// repeat; an agent that is not registered is NOT_FOUND: exit 2, one line
// (errors.ts). deployctl deregister <agent>: forget an agent that is not
// live (a decommissioned VM).
import type { AgentMsg, Client } from "../client.js";
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { jsonDocument } from "../render/json.js";
import { cordonLine } from "./inspect.js";

export interface CordonOptions extends CommonOptions {
  reason?: string;
}

const print = (s: string): boolean => process.stdout.write(s + "\n");

async function change(o: CommonOptions, call: (client: Client) => Promise<AgentMsg>, say: (after: AgentMsg) => string): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const after = await call(client);
    print(o.json ? jsonDocument("deploy.v1.Agent", after).trimEnd() : say(after));
    return EXIT.OK;
  } finally {
    client.close();
  }
}

export function cordonCommand(agentId: string, o: CordonOptions): Promise<ExitCode> {
  return change(
    o,
    (c) => c.cordonAgent(agentId, o.reason ?? ""),
    (a) =>
      `${agentId} is ${a.cordon ? cordonLine(a.cordon) : "cordoned"}: new deployments leave it out (naming it as a target is refused) and convergence waits; ` +
      `deployments already running go on. Undo with: deployctl uncordon ${agentId}`,
  );
}

export function uncordonCommand(agentId: string, o: CommonOptions): Promise<ExitCode> {
  return change(
    o,
    (c) => c.uncordonAgent(agentId),
    () => `${agentId} takes new deployments again; convergence brings it to the desired release of each app it serves`,
  );
}

export function deregisterCommand(agentId: string, o: CommonOptions): Promise<ExitCode> {
  return change(
    o,
    (c) => c.deregisterAgent(agentId),
    () => `deregistered ${agentId}: it is no longer listed, deployed to or converged (its command consumer is deleted); if its agent starts again, it registers again`,
  );
}
