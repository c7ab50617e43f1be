// Following, as the deploy and watch commands end: the exit code from the
// outcome, and how to resume when following stops early.
import type { Client, DeploymentMsg } from "../client.js";
import { CliError, EXIT, InterruptedError, UnreachableError, type ExitCode } from "../errors.js";
import { follow } from "../follow.js";
import { shortState } from "../render/format.js";
import type { FollowView } from "../render/view.js";
import { FollowState } from "../state.js";

export function resumeCommand(deploymentId: string, coordinatorFlag: string | undefined): string {
  return `deployctl watch ${deploymentId}${coordinatorFlag ? ` --coordinator ${coordinatorFlag}` : ""}`;
}

/** 0 when the deployment SUCCEEDED; 1 when it FAILED (a target failed or timed out) or was CANCELLED. */
export function exitCodeFor(d: DeploymentMsg): ExitCode {
  return shortState(d.state) === "SUCCEEDED" ? EXIT.OK : EXIT.FAILED;
}

export async function followToExit(
  client: Client,
  view: FollowView,
  snapshot: DeploymentMsg,
  afterSequence: number,
  coordinatorFlag: string | undefined,
): Promise<ExitCode> {
  const id = snapshot.id ?? "";
  const resume = resumeCommand(id, coordinatorFlag);
  try {
    const d = await follow({ client, deploymentId: id, afterSequence, view, state: new FollowState(id), snapshot });
    return exitCodeFor(d);
  } catch (err) {
    if (err instanceof InterruptedError) {
      throw new CliError(`stopped following ${id}; the deployment goes on (nothing was cancelled). Resume with: ${resume}`, EXIT.INTERRUPTED, { cause: err });
    }
    if (err instanceof UnreachableError) {
      throw new CliError(`${err.message}; the deployment goes on. Resume with: ${resume}`, EXIT.UNREACHABLE, { cause: err });
    }
    throw err;
  }
}
