// Where a deployment's time went: its events as the stream stored them, by
// type (and source), first and last relative to the CreateDeployment call.
// Printed per shape by the bench (--timeline) to see which stage of the path
// costs what, with server timestamps (one clock for every process).
import { bindContext, connectNats, dispatchedIdsOf, readEvents } from "../../services/shared/src/index.js";

export interface TimelineRow {
  what: string;
  count: number;
  firstMs: number;
  lastMs: number;
}

/** One stage of a target's path, over every target: p50 and p90 in ms (server timestamps, ms resolution). */
export interface StageRow {
  what: string;
  n: number;
  p50Ms: number;
  p90Ms: number;
}

export interface Timeline {
  rows: TimelineRow[];
  stages: StageRow[];
}

function stage(what: string, ms: number[]): StageRow | undefined {
  if (ms.length === 0) return undefined;
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { what, n: s.length, p50Ms: at(0.5), p90Ms: at(0.9) };
}

/** `auth`: an nkey and the CA, on a secured server (security.ts). */
export async function readTimeline(natsUrl: string, deploymentId: string, wall0: number, auth: { nkeySeed?: string; tlsCaFile?: string } = {}): Promise<Timeline> {
  const nc = await connectNats({ url: natsUrl, name: "bench-timeline", ...auth });
  try {
    const ctx = await bindContext(nc);
    const rows = new Map<string, TimelineRow>();
    // Per target: when it was dispatched, started, and its result stored.
    const dispatched = new Map<string, number>();
    const started = new Map<string, number>();
    const results: number[] = [];
    const toStarted: number[] = [];
    const toResult: number[] = [];
    // A dispatch after a result (max_concurrency below N): the coordinator's
    // turn, from the result that freed the slot to the next dispatch.
    const resultToDispatch: number[] = [];
    let lastResult: number | undefined;
    for await (const e of readEvents(ctx, deploymentId, { afterSeq: 0 })) {
      if (e.invalid !== undefined) continue;
      const who = e.source === "coordinator" ? "coordinator" : "agent";
      const what = `${e.event.type} (${who})`;
      const t = Date.parse(e.time) - wall0;
      const ev = e.event;
      const ids = dispatchedIdsOf(ev);
      if (ids.length > 0) {
        for (const a of ids) dispatched.set(a, t);
        if (lastResult !== undefined) resultToDispatch.push(t - lastResult);
        lastResult = undefined;
      } else if (ev.type === "target.started" && dispatched.has(ev.agentId)) {
        started.set(ev.agentId, t);
        toStarted.push(t - dispatched.get(ev.agentId)!);
      } else if (ev.type === "target.result" && started.has(ev.agentId)) {
        toResult.push(t - started.get(ev.agentId)!);
        results.push(t);
        lastResult = t;
      }
      const r = rows.get(what);
      if (!r) rows.set(what, { what, count: 1, firstMs: t, lastMs: t });
      else {
        r.count++;
        r.firstMs = Math.min(r.firstMs, t);
        r.lastMs = Math.max(r.lastMs, t);
      }
    }
    const stages = [
      stage("dispatched -> started (command delivery, journal, race: agent)", toStarted),
      stage("started -> result (run the executable, journal: agent)", toResult),
      stage("result -> next dispatch (wake, catch up, decide, publish: coordinator)", resultToDispatch),
    ].filter((x): x is StageRow => x !== undefined);
    return { rows: [...rows.values()].sort((a, b) => a.firstMs - b.firstMs), stages };
  } finally {
    await nc.close();
  }
}
