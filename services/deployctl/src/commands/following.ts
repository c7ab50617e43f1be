// Following, as the deploy and watch commands end: the exit code from the
// outcome, and how to resume when following stops early.
import type { Client, DeploymentMsg } from "../client.js";
import { CliError, EXIT, InterruptedError, UnreachableError, type ExitCode } from "../errors.js";
import { follow } from "../follow.js";
import { shortState } from "../render/format.js";
import type { FollowView, Notes } from "../render/view.js";
import { FollowState } from "../state.js";

export function resumeCommand(deploymentId: string, coordinatorFlag: string | undefined): string {
  return `deployctl watch ${deploymentId}${coordinatorFlag ? ` --coordinator ${coordinatorFlag}` : ""}`;
}

/** 0 when the deployment SUCCEEDED; 1 when it FAILED (a target failed or timed out) or was CANCELLED. */
export function exitCodeFor(d: DeploymentMsg): ExitCode {
  return shortState(d.state) === "SUCCEEDED" ? EXIT.OK : EXIT.FAILED;
}

/**
 * How long to look for the revert of a FAILED deployment with auto_revert
 * (or a CANCELLED one whose cancel asked for it). The coordinator creates it as the deployment finishes,
 * before it gives the pair's lock back, so it exists within moments;
 * after a coordinator crash the next sweep creates it, which may be later:
 * then `deployctl get <id>` shows reverted_by.
 */
const REVERT_LOOKUP_MS = 10_000;
const REVERT_POLL_MS = 250;

/**
 * A FAILED deployment with auto_revert, or a CANCELLED one whose cancel
 * asked for a revert: the deployment that brings its changed targets back
 * (reverted_by), read again until it shows, and a line naming it and how to
 * follow it. Nothing when there was nothing to revert (the finished message
 * says why).
 */
async function reportRevert(client: Client, view: Notes, d: DeploymentMsg, coordinatorFlag: string | undefined): Promise<DeploymentMsg> {
  const state = shortState(d.state);
  const kind = state === "FAILED" && d.strategy?.autoRevert && !d.reverts ? "auto_revert" : state === "CANCELLED" && d.cancelRevertsTo?.release ? "revert" : undefined;
  if (!kind) return d;
  if (new RegExp(`${kind}: nothing to restore`).test(d.message ?? "")) return d;
  const end = Date.now() + REVERT_LOOKUP_MS;
  let last = d;
  while (!last.revertedBy && Date.now() < end) {
    await new Promise((r) => setTimeout(r, REVERT_POLL_MS));
    last = await client.getDeployment(d.id ?? "").catch(() => last);
  }
  const id = d.id ?? "";
  if (!last.revertedBy) {
    // Either later (a coordinator crashed: the next sweep makes it) or never
    // (another deployment of the pair took the lock first: the coordinator logs it).
    view.note(
      `${kind}: no revert deployment of ${id} yet (none is made if another deployment of ${d.app ?? "the app"} in ${d.environment ?? "the environment"} ` +
        `took the lock first); deployctl get ${id} shows "reverted by" once it exists`,
    );
    return last;
  }
  // Read until it answers, within the same wait: a clean-clone test run saw
  // this read fail once, right after reverted_by showed.
  let revert = await client.getDeployment(last.revertedBy).catch(() => undefined);
  while (revert === undefined && Date.now() < end) {
    await new Promise((r) => setTimeout(r, REVERT_POLL_MS));
    revert = await client.getDeployment(last.revertedBy).catch(() => undefined);
  }
  const to = revert?.restores?.version ? ` back to ${revert.restores.version} (release ${revert.restores.release ?? "?"})` : " back";
  const n = revert?.targets?.length;
  view.note(
    `${kind}: deployment ${last.revertedBy} brings ${n === undefined ? "the changed" : n} target(s) of ${id}${to}; follow it with: ${resumeCommand(last.revertedBy, coordinatorFlag)}`,
    { deployment: last },
  );
  return last;
}

/** How deploy, rollback and revert end once their deployment exists: with --detach, a line saying how to follow it; else following it to its exit code. */
export async function detachOrFollow(client: Client, view: FollowView & Notes, d: DeploymentMsg, o: { detach?: boolean; coordinator?: string }): Promise<ExitCode> {
  if (o.detach) {
    view.note(`detached; follow it with: ${resumeCommand(d.id ?? "", o.coordinator)}`);
    return EXIT.OK;
  }
  return followToExit(client, view, d, 0, o.coordinator);
}

/** " (release <release>, from <deployment>)" for a deployment that restores a release; "" otherwise. */
export const restoredText = (d: DeploymentMsg): string => (d.restores?.release ? ` (release ${d.restores.release}, from ${d.restores.deploymentId || "-"})` : "");

export async function followToExit(
  client: Client,
  view: FollowView & Notes,
  snapshot: DeploymentMsg,
  afterSequence: number,
  coordinatorFlag: string | undefined,
): Promise<ExitCode> {
  const id = snapshot.id ?? "";
  const resume = resumeCommand(id, coordinatorFlag);
  try {
    const d = await follow({ client, deploymentId: id, afterSequence, view, state: new FollowState(id), snapshot });
    await reportRevert(client, view, d, coordinatorFlag);
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
