// deployctl promote | pause | resume <id>: an operator's decision on a
// running deployment. Each is idempotent on the coordinator (asking for
// what is already so returns the deployment unchanged), so each is safe to
// repeat; the line printed says whether this call changed anything, from
// the deployment as read before it. A refusal (promote without a canary
// wave, or once halted) is FAILED_PRECONDITION: exit 2.
import type { Client, DeploymentMsg } from "../client.js";
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { isoTime, isTerminalDeployment, shortState } from "../render/format.js";
import { jsonDocument } from "../render/json.js";

export interface PauseOptions extends CommonOptions {
  reason?: string;
}

const print = (s: string): boolean => process.stdout.write(s + "\n");

async function decide(
  id: string,
  o: CommonOptions,
  call: (client: Client) => Promise<DeploymentMsg>,
  say: (before: DeploymentMsg, after: DeploymentMsg) => string,
): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const before = await client.getDeployment(id);
    const after = await call(client);
    print(o.json ? jsonDocument("deploy.v1.Deployment", after).trimEnd() : say(before, after));
    return EXIT.OK;
  } finally {
    client.close();
  }
}

const follow = (id: string): string => `follow with: deployctl watch ${id}`;

export function promoteCommand(id: string, o: CommonOptions): Promise<ExitCode> {
  return decide(
    id,
    o,
    (c) => c.promoteDeployment(id),
    (before, after) => {
      if (before.promotedBy) return `${id} was already promoted by ${before.promotedBy} (now ${shortState(after.state)})`;
      const early = before.awaitingPromotion ? "" : " before its canary wave was done";
      return `promoted ${id}${early}: the rollout goes on to every target (promoted by ${after.promotedBy || "-"}); ${follow(id)}`;
    },
  );
}

export function pauseCommand(id: string, o: PauseOptions): Promise<ExitCode> {
  return decide(
    id,
    o,
    (c) => c.pauseDeployment(id, o.reason ?? ""),
    (before, after) => {
      if (isTerminalDeployment(before.state)) return `${id} was already ${shortState(before.state)}: nothing to pause`;
      if (before.cancelRequested) return `${id} is being cancelled: nothing to pause`;
      if (before.paused) return `${id} was already paused by ${before.pausedBy || "-"}; resume with: deployctl resume ${id}`;
      const bound = after.strategy?.maxPause?.seconds ? ` If it stays paused longer than max_pause ${after.strategy.maxPause.seconds}s, what is left is cancelled.` : "";
      return `paused ${id} (by ${after.pausedBy || "-"}): running applies go on, nothing new starts. Resume with: deployctl resume ${id}.${bound}`;
    },
  );
}

export function resumeDeploymentCommand(id: string, o: CommonOptions): Promise<ExitCode> {
  return decide(
    id,
    o,
    (c) => c.resumeDeployment(id),
    (before, after) => {
      if (isTerminalDeployment(before.state)) return `${id} was already ${shortState(before.state)}: nothing to resume`;
      if (!before.paused) return `${id} was not paused (${shortState(after.state)}): nothing to resume`;
      const waits = after.awaitingPromotion
        ? `; it still waits for a promote${after.promoteAt ? ` (by itself at ${isoTime(after.promoteAt)})` : ""}: deployctl promote ${id}`
        : ": dispatching goes on";
      return `resumed ${id}${waits}; ${follow(id)}`;
    },
  );
}
