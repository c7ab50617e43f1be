// deployctl cordon | uncordon <agent>: take an agent out of new deployments
// (a VM in maintenance) and let it take them again. Both are idempotent on
// the coordinator (asking for what is already so writes nothing), so safe to
// repeat; an agent that is not registered is NOT_FOUND: exit 2, one line
// (errors.ts). deployctl deregister <agent>: forget an agent that is not
// live (a decommissioned VM).
import { errorMessage, matchesSelector, parseSelector } from "../../../shared/src/index.js";
import type { AgentMsg, Client } from "../client.js";
import { EXIT, UsageError, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { jsonDocument } from "../render/json.js";
import { cordonLine } from "./inspect.js";

export interface CordonOptions extends CommonOptions {
  reason?: string;
  /** Every registered agent whose labels match (of --app and --env when given), instead of one named. */
  selector?: string;
  app?: string;
  env?: string;
}

/**
 * --selector: the same call for every registered agent the selector matches
 * (e.g. a zone in maintenance), one line each; one that fails is reported
 * and the others still go (exit 1 if any failed).
 */
async function changeMatching(o: CordonOptions, call: (client: Client, agentId: string) => Promise<AgentMsg>, verb: string): Promise<ExitCode> {
  const requirements = parseSelector(o.selector!, "--selector");
  const client = clientFor(o);
  try {
    const all = (await client.listAgents({ app: o.app ?? "", environment: o.env ?? "" })).agents ?? [];
    const matching = all.filter((a) => matchesSelector(requirements, a.labels ?? {}));
    const where = [o.app ? `app ${o.app}` : "", o.env ? `environment ${o.env}` : ""].filter(Boolean).join(" in ");
    if (matching.length === 0) throw new UsageError(`selector "${o.selector}" matches none of the ${all.length} registered agent(s)${where ? ` of ${where}` : ""}`);
    const done: AgentMsg[] = [];
    let failed = 0;
    for (const a of matching) {
      try {
        const after = await call(client, a.id ?? "");
        done.push(after);
        if (!o.json) print(`${verb} ${a.id}${after.cordon ? ` (${cordonLine(after.cordon)})` : ""}`);
      } catch (err) {
        failed++;
        process.stderr.write(`deployctl: ${a.id}: ${errorMessage(err)}\n`);
      }
    }
    if (o.json) print(jsonDocument("deploy.v1.ListAgentsResponse", { agents: done }).trimEnd());
    return failed > 0 ? EXIT.FAILED : EXIT.OK;
  } finally {
    client.close();
  }
}

/** Exactly one of an agent id and --selector. */
function oneTarget(agentId: string | undefined, o: CordonOptions): void {
  if ((agentId === undefined) === (o.selector === undefined)) throw new UsageError("name one agent, or give --selector (not both)");
  if (agentId !== undefined && (o.app !== undefined || o.env !== undefined)) throw new UsageError("--app and --env narrow --selector; with an agent id, leave them out");
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

export async function cordonCommand(agentId: string | undefined, o: CordonOptions): Promise<ExitCode> {
  oneTarget(agentId, o);
  if (agentId === undefined) return changeMatching(o, (c, id) => c.cordonAgent(id, o.reason ?? ""), "cordoned");
  return change(
    o,
    (c) => c.cordonAgent(agentId, o.reason ?? ""),
    (a) =>
      `${agentId} is ${a.cordon ? cordonLine(a.cordon) : "cordoned"}: new deployments leave it out (naming it as a target is refused) and convergence waits; ` +
      `deployments already running go on. Undo with: deployctl uncordon ${agentId}`,
  );
}

export async function uncordonCommand(agentId: string | undefined, o: CordonOptions): Promise<ExitCode> {
  oneTarget(agentId, o);
  if (agentId === undefined) return changeMatching(o, (c, id) => c.uncordonAgent(id), "uncordoned");
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
