// Where a deployment's time went: its events as the stream stored them, by
// type (and source), first and last relative to the CreateDeployment call.
// Printed per shape by the bench (--timeline) to see which stage of the path
// costs what, with server timestamps (one clock for every process).
import { bindContext, connectNats, readEvents } from "../../services/shared/src/index.js";

export interface TimelineRow {
  what: string;
  count: number;
  firstMs: number;
  lastMs: number;
}

export async function readTimeline(natsUrl: string, deploymentId: string, wall0: number): Promise<TimelineRow[]> {
  const nc = await connectNats({ url: natsUrl, name: "bench-timeline" });
  try {
    const ctx = await bindContext(nc);
    const rows = new Map<string, TimelineRow>();
    for await (const e of readEvents(ctx, deploymentId, { afterSeq: 0 })) {
      if (e.invalid !== undefined) continue;
      const who = e.source === "coordinator" ? "coordinator" : "agent";
      const what = `${e.event.type} (${who})`;
      const t = Date.parse(e.time) - wall0;
      const r = rows.get(what);
      if (!r) rows.set(what, { what, count: 1, firstMs: t, lastMs: t });
      else {
        r.count++;
        r.firstMs = Math.min(r.firstMs, t);
        r.lastMs = Math.max(r.lastMs, t);
      }
    }
    return [...rows.values()].sort((a, b) => a.firstMs - b.firstMs);
  } finally {
    await nc.close();
  }
}
