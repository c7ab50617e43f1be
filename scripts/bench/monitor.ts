// JetStream work, read from the server's monitoring endpoint: /varz
// in_msgs and out_msgs (every message clients sent the server, JetStream API
// requests included, and every message it delivered) and /jsz api.total and
// api.errors (JetStream API calls). Read before and after a shape; the
// difference over N is the work per target.

export interface ServerCounters {
  inMsgs: number;
  outMsgs: number;
  apiTotal: number;
  apiErrors: number;
}

export interface JsWork extends ServerCounters {
  n: number;
  /** Messages clients sent the server per target (publishes, acks, pulls and JetStream API requests): the goal's figure. */
  inPerTarget: number;
  /** Of which JetStream API calls, per target. */
  apiPerTarget: number;
  /** Messages the server delivered per target (deliveries, API replies, publish acks). */
  outPerTarget: number;
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

export async function readCounters(monitorUrl: string): Promise<ServerCounters> {
  const [varz, jsz] = await Promise.all([getJson(`${monitorUrl}/varz`), getJson(`${monitorUrl}/jsz`)]);
  const api = (jsz.api ?? {}) as { total?: number; errors?: number };
  return { inMsgs: Number(varz.in_msgs), outMsgs: Number(varz.out_msgs), apiTotal: Number(api.total ?? NaN), apiErrors: Number(api.errors ?? NaN) };
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

export function workOf(before: ServerCounters, after: ServerCounters, n: number): JsWork {
  const d = {
    inMsgs: after.inMsgs - before.inMsgs,
    outMsgs: after.outMsgs - before.outMsgs,
    apiTotal: after.apiTotal - before.apiTotal,
    apiErrors: after.apiErrors - before.apiErrors,
  };
  return { ...d, n, inPerTarget: r2(d.inMsgs / n), apiPerTarget: r2(d.apiTotal / n), outPerTarget: r2(d.outMsgs / n) };
}
