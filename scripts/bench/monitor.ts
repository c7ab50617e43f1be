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
  /**
   * The scale case: how many of inPerTarget the fleet sends anyway, idle
   * (heartbeats), at the rate measured over the idle window, for as long as
   * the shape was counted. Reported, not subtracted: the goal is judged on
   * inPerTarget.
   */
  backgroundPerTarget?: number;
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

/**
 * What the messages were, by kind (BENCH_TRACE_SUBJECTS=1): a `>`
 * subscription beside the run counts every message published in the account
 * by subject class. Profiling only: the subscription itself costs the server
 * one delivery per message, so the figures of a traced run are not the
 * bench's.
 */
export interface SubjectTrace {
  stop(n: number): Promise<Record<string, number>>;
}

export function subjectClass(subject: string): string {
  const t = subject.split(".");
  if (subject.startsWith("_INBOX")) return "reply to a client (server → client)";
  if (subject.startsWith("$JS.ACK.")) return `ack ${t[2]}`;
  if (subject.startsWith("$JS.API.DIRECT.GET.")) return `direct get ${t[4]}${t.length > 5 ? ` ${t.slice(5, 7).join(".")}.*` : ""}`;
  if (subject.startsWith("$JS.API.CONSUMER.MSG.NEXT.")) return `pull ${t[5]}`;
  if (subject.startsWith("$JS.API.STREAM.MSG.GET.")) return `msg get ${t[5]}`;
  if (subject.startsWith("$JS.API.")) return t.slice(0, 5).join(".");
  if (subject.startsWith("$KV.")) return `kv ${t[1]}`;
  if (subject.startsWith("$JS.EVENT.")) return t.slice(0, 5).join(".");
  if (subject.startsWith("deploy.evt.")) return `event by ${t[3] === "coordinator" ? "coordinator" : "agent"}`;
  if (subject.startsWith("deploy.cmd.")) return "command";
  return t.slice(0, 2).join(".");
}

export async function traceSubjects(natsUrl: string): Promise<SubjectTrace> {
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: natsUrl, name: "bench-trace" });
  const counts = new Map<string, number>();
  const sub = nc.subscribe(">", {
    callback: (_err, m) => {
      // A consumer's delivery shows the stream subject, with an ack reply.
      const k = m.reply?.startsWith("$JS.ACK.") ? `delivered: ${subjectClass(m.subject)}` : subjectClass(m.subject);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    },
  });
  await nc.flush();
  return {
    async stop(n: number) {
      await nc.flush();
      sub.unsubscribe();
      await nc.close();
      return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, r2(v / n)]));
    },
  };
}
