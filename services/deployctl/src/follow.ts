// Following a deployment until it ends: WatchDeployment from the last event
// printed, reconnecting with after_sequence when the coordinator goes away
// (UNAVAILABLE, e.g. a restart or a drained coordinator), the sequence kept in
// a state file so `deployctl watch <id>` resumes even after a SIGKILL.
// Ctrl-C stops following only: the deployment goes on.
import type { ServiceError } from "@grpc/grpc-js";
import { WatchesFullError } from "../../shared/src/errors.js";
import { Backoff, pause, type Client, type DeploymentEventMsg, type DeploymentMsg } from "./client.js";
import { InterruptedError, isRetryable, statusLine } from "./errors.js";
import { isTerminalDeployment } from "./render/format.js";
import type { FollowView } from "./render/view.js";
import { FollowState } from "./state.js";

export interface FollowOptions {
  client: Client;
  deploymentId: string;
  /** Events after this sequence are shown. */
  afterSequence: number;
  view: FollowView;
  state: FollowState;
  /** The deployment as last read, to start the view from (read here when absent). */
  snapshot?: DeploymentMsg;
}

/** Resolves with the terminal deployment; throws InterruptedError on Ctrl-C. */
export async function follow(o: FollowOptions): Promise<DeploymentMsg> {
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  // `on` and removed below, not `once`: the live view hides the cursor, and
  // the module restoring it (restore-cursor, through signal-exit) also
  // listens for SIGINT. When its listener runs and finds itself the only
  // one, it re-raises SIGINT and the process dies on the spot, before the
  // view is tidied and "Resume with: deployctl watch <id>" is printed. A
  // `once` listener has already removed itself by then, so on a terminal
  // Ctrl-C killed deployctl silently (with stderr redirected the cursor is
  // never hidden, which is why the line appeared only then).
  process.on("SIGINT", onSigint);
  try {
    return await followUntilEnd(o, abort.signal);
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

/** While the coordinator's watches are full (watches.max): a read of the deployment this often. */
const WATCHES_FULL_READ_MS = 2000;

/** A watch refused because every watch slot of the coordinator is taken (the trailer WatchesFullError sets). */
const isWatchesFull = (err: ServiceError): boolean => (err.metadata?.get(WatchesFullError.TRAILER).length ?? 0) > 0;

async function followUntilEnd(o: FollowOptions, signal: AbortSignal): Promise<DeploymentMsg> {
  const { client, deploymentId, view, state } = o;
  let last = o.afterSequence;
  const snapshot = o.snapshot ?? (await client.getDeployment(deploymentId));
  view.begin(snapshot, last);
  const backoff = new Backoff(client.opts);
  let watchesFullNoted = false;
  const interrupted = (): never => {
    view.interrupt();
    throw new InterruptedError(deploymentId);
  };
  const onEvent = (e: DeploymentEventMsg): void => {
    const seq = Number(e.sequence ?? 0);
    if (seq <= last || signal.aborted) return; // a replay after a reconnect overlaps
    last = seq;
    view.event(e);
    state.save(last);
    backoff.reset();
  };
  for (;;) {
    if (signal.aborted) interrupted();
    try {
      await client.watchOnce(deploymentId, last, onEvent, signal);
      if (signal.aborted) interrupted();
      // The server ends the stream after the terminal event.
      const d = await client.getDeployment(deploymentId);
      if (isTerminalDeployment(d.state)) {
        view.end(d);
        return d;
      }
      view.reconnecting("stream ended early", last);
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      if (signal.aborted) interrupted();
      if (!isRetryable(err)) throw err;
      if (isWatchesFull(err)) {
        // The coordinator answers, but every watch slot it has is taken
        // (watches.max): read the deployment instead, and try the watch
        // again, for as long as it runs. Not the retry budget, which is for
        // a coordinator that does not answer.
        const d = await client.getDeployment(deploymentId);
        if (signal.aborted) interrupted();
        if (isTerminalDeployment(d.state)) {
          view.end(d);
          return d;
        }
        if (!watchesFullNoted) view.reconnecting(`${statusLine(err)}; reading the deployment every ${WATCHES_FULL_READ_MS / 1000} s until a watch is free`, last);
        watchesFullNoted = true;
        backoff.reset();
        await pause(WATCHES_FULL_READ_MS, signal);
        if (signal.aborted) interrupted();
        continue;
      }
      view.reconnecting(statusLine(err), last);
      await backoff.wait(err, signal);
      if (signal.aborted) interrupted();
    }
  }
}
