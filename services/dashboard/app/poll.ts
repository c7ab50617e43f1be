// Keeps a list page (deployments, agents) current by polling its JSON endpoint.
//
// Polling rather than a stream: the only stream is per deployment
// (GET /api/deployments/<id>/events), and a list changes without events of
// its own: an agent turns "not live" because a heartbeat did not come, and a
// deployment's row is its KV projection, which the coordinator writes at most
// every 250 ms anyway. A list stream would need, per open page, a consumer on
// every deployment's events plus filters and paging re-applied to each; a GET
// every 2 s answers through the same ListDeployments/ListAgents functions as
// gRPC, and costs nothing while no page is open.
//
// One request at a time, the next 2 s after the last settled. A hidden tab
// backs off (2, 4, 8 … up to 60 s) and refreshes at once when shown again;
// failures back off the same way (up to 30 s) so a coordinator that is down
// is not hammered. The tick's AbortSignal fires when the page or its filters
// change: a late answer for the old filters is dropped, never shown.
import { useEffect, useRef } from "preact/hooks";

const EVERY_MS = 2000;
const HIDDEN_MAX_MS = 60_000;
const FAILING_MAX_MS = 30_000;

/** Runs `tick` now and keeps running it; returns "refresh now". `tick` rejects on failure (to back off). */
export function usePoll(tick: (signal: AbortSignal) => Promise<void>, deps: readonly unknown[]): () => void {
  // The latest closure: a tick sees the current state (rows shown, filters).
  const latest = useRef(tick);
  latest.current = tick;
  const refresh = useRef<() => void>(() => undefined);

  useEffect(() => {
    const abort = new AbortController();
    let timer: number | undefined;
    let running = false;
    let again = false; // a refresh asked for while a request was in flight
    let failures = 0;
    let hiddenRounds = 0;

    const schedule = (): void => {
      let ms = failures > 0 ? Math.min(FAILING_MAX_MS, EVERY_MS * 2 ** failures) : EVERY_MS;
      if (document.visibilityState === "hidden") ms = Math.max(ms, Math.min(HIDDEN_MAX_MS, EVERY_MS * 2 ** ++hiddenRounds));
      else hiddenRounds = 0;
      timer = window.setTimeout(run, ms);
    };
    const run = (): void => {
      window.clearTimeout(timer);
      if (abort.signal.aborted) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      latest
        .current(abort.signal)
        .then(
          () => void (failures = 0),
          () => void failures++,
        )
        .finally(() => {
          running = false;
          if (abort.signal.aborted) return;
          if (again) {
            again = false;
            run();
          } else schedule();
        });
    };
    const onVisibility = (): void => {
      if (document.visibilityState === "visible") run();
    };

    document.addEventListener("visibilitychange", onVisibility);
    refresh.current = run;
    run();
    return () => {
      abort.abort();
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
    // The caller's deps decide when polling restarts (new filters); `tick` itself is read through `latest`.
  }, deps);

  return () => refresh.current();
}
