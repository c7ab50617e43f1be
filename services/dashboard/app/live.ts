// Follows a deployment's events over Server-Sent Events without polling.
// Every event's id is its stream sequence: when the connection drops, the
// browser reconnects with Last-Event-ID; if it gives up (EventSource CLOSED),
// we open a new one from the last sequence seen (?after=). Either way the
// server sends exactly the events after it: none missed, none repeated.
import { eventsUrl, type DeployEvent } from "./api.js";

export type LiveStatus = "connecting" | "live" | "reconnecting" | "ended";

export interface Follow {
  /** Drops the connection and resumes from the last sequence (what a flaky network does). */
  reconnect(): void;
  close(): void;
}

export function follow(
  id: string,
  after: number,
  on: { event(e: DeployEvent, seq: number): void; status(s: LiveStatus): void; end(): void },
): Follow {
  let last = after;
  let es: EventSource | undefined;
  let timer: number | undefined;
  let done = false;
  const open = (): void => {
    on.status(es ? "reconnecting" : "connecting");
    const source = new EventSource(eventsUrl(id, last));
    es = source;
    source.onopen = () => on.status("live");
    source.onmessage = (m: MessageEvent<string>) => {
      const seq = Number(m.lastEventId);
      on.event(JSON.parse(m.data) as DeployEvent, seq);
      if (seq > last) last = seq;
    };
    source.addEventListener("end", () => {
      done = true;
      source.close();
      on.status("ended");
      on.end();
    });
    source.onerror = () => {
      if (done || source !== es) return;
      on.status("reconnecting");
      if (source.readyState === EventSource.CLOSED) timer = window.setTimeout(open, 2000);
    };
  };
  open();
  return {
    reconnect() {
      if (done) return;
      es?.close();
      window.clearTimeout(timer);
      open();
    },
    close() {
      done = true;
      window.clearTimeout(timer);
      es?.close();
    },
  };
}
