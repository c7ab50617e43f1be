// GET /api/deployments/:id/events: WatchDeployment over Server-Sent Events.
//
// Each event's SSE id is its stream sequence, so a browser's EventSource
// that loses the connection reconnects with `Last-Event-ID` and gets exactly
// the events after the last one it saw (`?after=N` does the same for a first
// connection; the header wins, since EventSource keeps the first URL). The
// stream ends with `event: end` after the terminal event.
import type { IncomingMessage, ServerResponse } from "node:http";
import { WatchesFullError, errorMessage, type JsContext, type Logger } from "../../../shared/src/index.js";
import { toEventMessage } from "../grpc/convert.js";
import { mustExist, untilDrained, watchDeployment, type HeldFolds, type WatchSlots } from "../queries/watchDeployment.js";
import { validateAfterSequence } from "../requests.js";
import { HttpError } from "./respond.js";

// A comment line this often keeps proxies from closing an idle stream (nginx's
// proxy_read_timeout is 60 s by default).
const KEEPALIVE_MS = 15_000;
/** Reconnection delay the browser is told to use. */
const RETRY_MS = 1000;

export interface EventStreamDeps {
  ctx: JsContext;
  log: Logger;
  shutdown: AbortSignal;
  /** How many watches this coordinator follows at once (gRPC and these together). */
  watches: WatchSlots;
  /** The folds this coordinator holds: a deployment among them exists. */
  reconciler: Pick<HeldFolds, "holds">;
}

export function afterSequenceOf(req: IncomingMessage, query: URLSearchParams): number {
  const last = req.headers["last-event-id"];
  const raw = typeof last === "string" && last.trim() !== "" ? last.trim() : query.get("after");
  return validateAfterSequence(raw ?? undefined);
}

export async function streamEvents(deps: EventStreamDeps, req: IncomingMessage, res: ServerResponse, id: string, after: number): Promise<void> {
  // Before the headers: an unknown deployment is a plain 404, which makes
  // EventSource give up rather than retry.
  let giveBack: () => void;
  try {
    giveBack = deps.watches.take();
  } catch (err) {
    // 503 and not the 413 RESOURCE_EXHAUSTED maps to: the browser may try again shortly.
    if (err instanceof WatchesFullError) throw new HttpError(503, err.message);
    throw err;
  }
  try {
    await mustExist(deps.ctx, id, deps.reconciler);
  } catch (err) {
    giveBack();
    throw err;
  }
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  res.on("close", stop);
  deps.shutdown.addEventListener("abort", stop, { once: true });
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.write(`retry: ${RETRY_MS}\n\n`);
  const keepalive = setInterval(() => res.write(": keep-alive\n\n"), KEEPALIVE_MS);
  let sent = 0;
  try {
    const onRetry = (err: unknown, attempt: number): void => deps.log.warn({ deploymentId: id, attempt, err: errorMessage(err) }, "event stream: reading events failed; resuming");
    for await (const { event, record, ignored } of watchDeployment(deps.ctx, id, { afterSeq: after, signal: abort.signal, onRetry })) {
      if (abort.signal.aborted) break;
      sent++;
      if (!res.write(`id: ${event.seq}\ndata: ${JSON.stringify(toEventMessage(event, record, ignored))}\n\n`)) await untilDrained(res, abort.signal);
    }
    // Aborted (client gone or shutting down): the client resumes from its last id.
    if (!abort.signal.aborted) res.write("event: end\ndata: {}\n\n");
  } catch (err) {
    // Mid-stream there is no status left to send: end, and the client resumes.
    deps.log.warn({ deploymentId: id, after, sent, err }, "event stream failed");
  } finally {
    giveBack();
    clearInterval(keepalive);
    deps.shutdown.removeEventListener("abort", stop);
    res.off("close", stop);
    res.end();
  }
}
