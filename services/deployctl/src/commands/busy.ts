// deploy and rollback when another deployment of the app and environment is
// active: the coordinator refuses the create (one active deployment per
// pair) and names that deployment in the trailer `active-deployment-id`.
// By default deployctl says so and how to wait; with --wait-active it waits
// for that deployment to end and sends the same request again (same
// request_id: never two deployments), as many times as another one took the
// pair first, until the time given runs out; with --cancel-active it
// cancels the active deployment first (Nomad's "a new version replaces the
// running deployment"), then waits for it to end (its applies in flight
// finish) and creates; --kill-active cancels it with kill_running, so its
// applies in flight are killed rather than waited for (a deployment hung in
// a hook, replaced by its fix).
//
// The wait is deployctl's, not the coordinator's: CreateDeployment still
// answers at once (no long calls), and a pipeline that gives up loses
// nothing (nothing was created).
import { status, type ServiceError } from "@grpc/grpc-js";
import { Option, type Command } from "commander";
import { PairBusyError } from "../../../shared/src/errors.js";
import type { Client, DeploymentMsg } from "../client.js";
import { CliError, EXIT, isRetryable, isServiceError, statusLine } from "../errors.js";
import { isTerminalDeployment, shortState } from "../render/format.js";
import { durationOption } from "../options.js";
import type { Notes } from "../render/view.js";


/** --cancel-active without --wait-active: how long the cancelled deployment's applies in flight may take to finish. */
export const CANCEL_ACTIVE_DEFAULT_WAIT_MS = 10 * 60_000;
/** How often the active deployment is read while waiting (one GetDeployment with a page of one target). */
const POLL_MS = 1000;

export interface BusyOptions {
  /** --wait-active: wait up to this long for the active deployment of the pair to end. */
  waitActive?: number;
  /** --cancel-active: cancel the active deployment of the pair, then wait for it to end. */
  cancelActive?: boolean;
  /** --kill-active: as cancelActive, with kill_running (its applies in flight are killed). */
  killActive?: boolean;
}

export function withBusyOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--wait-active <duration>",
        "when another deployment of the app and environment is active, wait up to this long for it to end (e.g. 30m), then create this one (the same request: never twice)",
      ).argParser(durationOption),
    )
    .option(
      "--cancel-active",
      `when another deployment of the app and environment is active, cancel it (its applies in flight finish), wait for it to end (up to --wait-active, default ${CANCEL_ACTIVE_DEFAULT_WAIT_MS / 60_000}m), then create this one`,
    )
    .option("--kill-active", "as --cancel-active, and kill the active deployment's applies running now (deployctl cancel --kill): for one hung in a hook");
}

/** The deployment a FAILED_PRECONDITION names as holding the pair, if that is why it was refused. */
export function activeDeploymentOf(err: unknown): string | undefined {
  if (!isServiceError(err) || err.code !== status.FAILED_PRECONDITION) return undefined;
  const v = err.metadata?.get(PairBusyError.TRAILER)[0];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** 2s, 10m, 9m58s: as --wait-active is written. */
function durationText(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m${s % 60 > 0 ? `${s % 60}s` : ""}`;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const isNotFound = (err: unknown): boolean => isServiceError(err) && err.code === status.NOT_FOUND;

/**
 * Reads `id` until it is terminal ("ended"), not found ("absent": it is
 * being created, its lock coming first, or its creator died and the lock
 * is taken over once abandoned: the create is asked again, and decides),
 * or `deadline` passes ("timeout"). A coordinator restarting answers
 * UNAVAILABLE for a moment: read again.
 */
async function waitForEnd(client: Client, id: string, deadline: number): Promise<"ended" | "absent" | "timeout"> {
  for (;;) {
    let absent = false;
    const d = await client.getDeployment(id, { pageSize: 1 }).catch((err: unknown) => {
      if (isNotFound(err)) absent = true;
      else if (!isRetryable(err)) throw err;
      return undefined;
    });
    if (d && isTerminalDeployment(d.state)) return "ended";
    if (Date.now() >= deadline) return "timeout";
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    if (absent) return "absent";
  }
}

/** How long `o` waits for an active deployment of the pair to end (--wait-active; replacing it, --cancel-active or --kill-active, waits 10 minutes by default). */
export function activeWaitMs(o: BusyOptions): number {
  const replace = o.cancelActive === true || o.killActive === true;
  return o.waitActive ?? (replace ? CANCEL_ACTIVE_DEFAULT_WAIT_MS : 0);
}

/** The answer to a refusal for an active deployment when `o` neither waits for it nor replaces it. */
export function activeRefusal(refusal: ServiceError): CliError {
  return new CliError(
    `${statusLine(refusal)}; wait for it with --wait-active <duration> (e.g. --wait-active 30m), or replace it with --cancel-active (--kill-active also kills its applies running now)`,
    EXIT.USAGE,
    { cause: refusal },
  );
}

/**
 * `create` (the same request every time) until it is not refused for an
 * active deployment of the pair, waiting for each such deployment to end
 * (cancelling it first with cancelActive) while the time allows.
 * `what` names the request in the cancel's reason and the notes.
 */
export async function createWhenFree(client: Client, view: Notes, o: BusyOptions, what: string, create: () => Promise<DeploymentMsg>): Promise<DeploymentMsg> {
  const replace = o.cancelActive === true || o.killActive === true;
  const waitMs = activeWaitMs(o);
  const deadline = Date.now() + waitMs;
  const cancelled = new Set<string>();
  /** Deployments whose wait was announced (one that is being created is asked about again and again). */
  const noted = new Set<string>();
  for (;;) {
    let active: string | undefined;
    let refusal: ServiceError;
    try {
      return await create();
    } catch (err) {
      active = activeDeploymentOf(err);
      if (active === undefined) throw err;
      refusal = err as ServiceError;
    }
    if (waitMs === 0) throw activeRefusal(refusal);
    if (Date.now() >= deadline) {
      throw new CliError(`${statusLine(refusal)}; still active after waiting ${durationText(waitMs)} (--wait-active): nothing was created`, EXIT.USAGE, { cause: refusal });
    }
    if (replace && !cancelled.has(active)) {
      const flag = o.killActive ? "--kill-active" : "--cancel-active";
      // Not found: being created (cancelled on the next round, once it exists).
      const d = await client.cancelDeployment(active, `replaced by ${what} (deployctl ${flag})`, o.killActive === true).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (d) {
        cancelled.add(active);
        // A deployment with nothing in flight (waiting for a promote, paused) ends at once.
        const ended = isTerminalDeployment(d.state);
        const inFlight = o.killActive ? "applies in flight are killed" : "applies in flight finish";
        view.note(`cancelled deployment ${active} (${flag}): ${ended ? `now ${shortState(d.state)}` : `targets not yet started are cancelled, ${inFlight}`}`);
        if (ended) continue;
      }
    }
    if (!noted.has(active)) {
      noted.add(active);
      view.note(`deployment ${active} is active for this app and environment; waiting for it to end (up to ${durationText(Math.max(0, deadline - Date.now()))} more; follow it with deployctl watch ${active})`);
    }
    const outcome = await waitForEnd(client, active, deadline);
    if (outcome === "timeout") {
      throw new CliError(`${statusLine(refusal)}; still active after waiting ${durationText(waitMs)} (--wait-active): nothing was created`, EXIT.USAGE, { cause: refusal });
    }
    if (outcome === "ended") view.note(`deployment ${active} ended; sending the request again`);
  }
}
