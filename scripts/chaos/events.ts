// Reads what the checks compare: every event of the run (DEPLOY_EVENTS is
// fresh per run) and the KV projections.
import type { JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DeploymentRecord, StoredEvent } from "../../services/shared/src/fold.js";
import { parseEvent } from "../../services/shared/src/schemas.js";
import { readProjection as readStoredProjection } from "../../services/shared/src/js/loadDeployment.js";

export interface RunEvent extends StoredEvent {
  deploymentId: string;
  timeMs: number;
}

/** Every readable event in DEPLOY_EVENTS, grouped by deployment, in stream order. */
export async function readAllEvents(jsm: JetStreamManager): Promise<Map<string, RunEvent[]>> {
  const out = new Map<string, RunEvent[]>();
  let seq = 1;
  for (;;) {
    let m: StoredMsg | null;
    try {
      m = await jsm.streams.getMessage("DEPLOY_EVENTS", { seq, next_by_subj: "deploy.evt.>" } as unknown as MsgRequest);
    } catch (err) {
      if (/no message found/i.test(String(err))) break;
      throw err;
    }
    if (m === null) break;
    seq = m.seq + 1;
    const parts = m.subject.split(".");
    const deploymentId = parts[2]!;
    try {
      const event = parseEvent(m.data);
      const list = out.get(deploymentId) ?? [];
      list.push({ seq: m.seq, time: m.time.toISOString(), timeMs: m.time.getTime(), source: parts.at(-1)!, event, deploymentId });
      out.set(deploymentId, list);
    } catch {
      // the fold skips what it cannot read, and so do we
    }
  }
  return out;
}

/** The projection as stored: one value, or a large deployment's summary and shards put together (projectionShards.ts). */
export async function readProjection(nc: NatsConnection, id: string): Promise<DeploymentRecord | undefined> {
  const deployments = await new Kvm(nc).open("deploy_deployments");
  return (await readStoredProjection({ deployments }, id))?.record;
}

/** JSON with sorted keys, so two records compare by content. */
export function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : x,
  );
}
