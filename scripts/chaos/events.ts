// Reads what the checks compare: every event of the run (DEPLOY_EVENTS is
// fresh per run) and the KV projections.
import type { JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { foldEvent, skipUnreadable, type DeploymentRecord, type HeldChunks, type StoredEvent } from "../../services/shared/src/fold.js";
import { parseEvent } from "../../services/shared/src/schemas.js";
import { readProjection as readStoredProjection } from "../../services/shared/src/js/loadDeployment.js";

export interface RunEvent extends StoredEvent {
  deploymentId: string;
  timeMs: number;
}

/** A message in DEPLOY_EVENTS that is no event (poison-event), and why. */
export interface Unreadable {
  seq: number;
  source: string;
  timeMs: number;
  why: string;
}

/**
 * Every readable event in DEPLOY_EVENTS, grouped by deployment, in stream
 * order; the unreadable messages, by deployment, are in `unreadable`.
 */
export type RunEvents = Map<string, RunEvent[]> & { unreadable: Map<string, Unreadable[]> };

export async function readAllEvents(jsm: JetStreamManager): Promise<RunEvents> {
  const out = Object.assign(new Map<string, RunEvent[]>(), { unreadable: new Map<string, Unreadable[]>() });
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
    } catch (err) {
      // The fold skips what it cannot read, moving its sequences past it (foldRun).
      const list = out.unreadable.get(deploymentId) ?? [];
      list.push({ seq: m.seq, source: parts.at(-1)!, timeMs: m.time.getTime(), why: String(err) });
      out.unreadable.set(deploymentId, list);
    }
  }
  return out;
}

/**
 * The fold of a deployment as the system folds it (js/loadDeployment.ts):
 * readable events folded, unreadable ones skipped with every sequence moved
 * past them (skipUnreadable), in stream order.
 */
export function foldRun(all: RunEvents, id: string, untilSeq = Number.POSITIVE_INFINITY): DeploymentRecord | undefined {
  const readable = (all.get(id) ?? []).filter((e) => e.seq <= untilSeq);
  const bad = (all.unreadable.get(id) ?? []).filter((e) => e.seq <= untilSeq);
  let rec: DeploymentRecord | undefined;
  const held: HeldChunks = new Map();
  let j = 0;
  for (const e of readable) {
    for (; j < bad.length && bad[j]!.seq < e.seq; j++) skipUnreadable(rec, bad[j]!);
    rec = foldEvent(rec, e, held).record;
  }
  for (; j < bad.length; j++) skipUnreadable(rec, bad[j]!);
  return rec;
}

/** Every deployment with an event, readable or not. */
export function deploymentsOf(all: RunEvents): string[] {
  return [...new Set([...all.keys(), ...all.unreadable.keys()])];
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
