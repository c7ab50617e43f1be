// JetStream work, read from the server's monitoring endpoint: /varz
// in_msgs and out_msgs (every message clients sent the server, JetStream API
// requests included, and every message it delivered), /jsz api.total and
// api.errors (JetStream API calls), and each stream's last sequence from
// /jsz?streams=true (the writes the server stored, each one fsync'd with
// sync_interval: always, and stored one after another on its stream: what
// bounds a small fan-out). Read before and after a shape; the difference
// over N is the work per target.

export interface ServerCounters {
  inMsgs: number;
  outMsgs: number;
  apiTotal: number;
  apiErrors: number;
  /** Bytes clients sent the server and bytes it delivered (/varz in_bytes, out_bytes). */
  inBytes: number;
  outBytes: number;
  /** Each stream's last sequence, by "<account>/<stream>". */
  lastSeqs: Record<string, number>;
}

export interface JsWork extends Omit<ServerCounters, "lastSeqs"> {
  n: number;
  /** Messages clients sent the server per target (publishes, acks, pulls and JetStream API requests): the goal's figure. */
  inPerTarget: number;
  /** Of which JetStream API calls, per target. */
  apiPerTarget: number;
  /** Messages the server delivered per target (deliveries, API replies, publish acks). */
  outPerTarget: number;
  /**
   * Writes the server stored (messages appended to any stream, KV buckets
   * included), per target: the sum of the streams' last sequences' growth
   * (a stream made during the run counts from 0; one deleted is not counted).
   */
  storedPerTarget: number;
  /** Bytes the server delivered per target (a bundle's chunks, with every other delivery). */
  outBytesPerTarget: number;
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
  const [varz, jsz] = await Promise.all([getJson(`${monitorUrl}/varz`), getJson(`${monitorUrl}/jsz?streams=true`)]);
  const api = (jsz.api ?? {}) as { total?: number; errors?: number };
  const lastSeqs: Record<string, number> = {};
  const accounts = (jsz.account_details ?? []) as { name?: string; stream_detail?: { name?: string; state?: { last_seq?: number } }[] }[];
  for (const a of accounts) for (const st of a.stream_detail ?? []) lastSeqs[`${a.name}/${st.name}`] = Number(st.state?.last_seq ?? 0);
  return { inMsgs: Number(varz.in_msgs), outMsgs: Number(varz.out_msgs), inBytes: Number(varz.in_bytes), outBytes: Number(varz.out_bytes), apiTotal: Number(api.total ?? NaN), apiErrors: Number(api.errors ?? NaN), lastSeqs };
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

export function workOf(before: ServerCounters, after: ServerCounters, n: number): JsWork {
  const d = {
    inMsgs: after.inMsgs - before.inMsgs,
    outMsgs: after.outMsgs - before.outMsgs,
    apiTotal: after.apiTotal - before.apiTotal,
    apiErrors: after.apiErrors - before.apiErrors,
    inBytes: after.inBytes - before.inBytes,
    outBytes: after.outBytes - before.outBytes,
  };
  let stored = 0;
  for (const [stream, seq] of Object.entries(after.lastSeqs)) stored += seq - Math.min(seq, before.lastSeqs[stream] ?? 0);
  return { ...d, n, inPerTarget: r2(d.inMsgs / n), apiPerTarget: r2(d.apiTotal / n), outPerTarget: r2(d.outMsgs / n), storedPerTarget: r2(stored / n), outBytesPerTarget: Math.round(d.outBytes / n) };
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

/** An ack's verb: "" or +ACK (an ack), +WPI (in progress), +NAK, +TERM. */
const ackBody = (data: Uint8Array): string => new TextDecoder().decode(data.subarray(0, 5));

/** An ack's kind by its payload: an ack (empty or +ACK), an in-progress ack (+WPI), +NAK or +TERM. */
function ackKind(subject: string, data: Uint8Array): string {
  const body = ackBody(data);
  const kind = body === "" || body === "+ACK" ? "ack" : body === "+WPI" ? "in-progress ack" : body.trim();
  return `  of which ${kind} ${subject.split(".")[2]}`;
}

/**
 * A delivery's ack reply ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<stored ns>.<pending>):
 * a redelivery, and how long after the message was stored, in buckets.
 */
function redelivery(reply: string): string | undefined {
  const t = reply.split(".");
  if (t.length !== 9) return undefined;
  const delivered = Number(t[4]);
  if (!(delivered > 1)) return undefined;
  const ageS = (Date.now() - Number(BigInt(t[7]!) / 1_000_000n)) / 1000;
  const bucket = [5, 10, 20, 30, 45, 60, 90, 120].find((b) => ageS < b);
  return `  redelivered ${t[2]} (delivery ${delivered}), ${bucket === undefined ? "≥ 120" : `< ${bucket}`} s after it was stored`;
}

export async function traceSubjects(natsUrl: string): Promise<SubjectTrace> {
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: natsUrl, name: "bench-trace" });
  const counts = new Map<string, number>();
  // BENCH_TRACE_SUBJECTS_ALL=1 as well: every message with its time since the first, printed at the end (a small shape only: fan-out 10 prints ~300 lines), with the start of each API request and KV write (which key, which read).
  const everyMessage = process.env["BENCH_TRACE_SUBJECTS_ALL"] === "1";
  const all: { at: number; what: string }[] = [];
  const sub = nc.subscribe(">", {
    callback: (_err, m) => {
      // A consumer's delivery shows the stream subject, with an ack reply.
      const k = m.reply?.startsWith("$JS.ACK.") ? `delivered: ${subjectClass(m.subject)}` : subjectClass(m.subject);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      const more = m.reply?.startsWith("$JS.ACK.") ? redelivery(m.reply) : m.subject.startsWith("$JS.ACK.") ? ackKind(m.subject, m.data) : undefined;
      if (more !== undefined) counts.set(more, (counts.get(more) ?? 0) + 1);
      timeline(m.subject, m.reply, m.data);
      if (everyMessage) all.push({ at: performance.now(), what: `${m.reply?.startsWith("$JS.ACK.") ? "delivered: " : ""}${subjectClass(m.subject)} ${m.subject.slice(0, 60)}${m.subject.startsWith("$JS.API.") || m.subject.startsWith("$KV.") ? ` ${new TextDecoder().decode(m.data).slice(0, 90)}` : ""}` });
    },
  });
  // Commands only: each (consumer, stream seq)'s deliveries and acks, by the time this subscriber saw them.
  const lines = new Map<string, { at: number; what: string }[]>();
  const timeline = (subject: string, reply: string | undefined, data: Uint8Array): void => {
    const now = performance.now();
    if (reply?.startsWith("$JS.ACK.DEPLOY_COMMANDS.")) {
      const t = reply.split(".");
      const k = `${t[3]}.${t[5]}`;
      const l = lines.get(k) ?? [];
      l.push({ at: now, what: `d${t[4]}` });
      lines.set(k, l);
    } else if (subject.startsWith("$JS.ACK.DEPLOY_COMMANDS.")) {
      const t = subject.split(".");
      const k = `${t[3]}.${t[5]}`;
      lines.get(k)?.push({ at: now, what: ackBody(data) === "+WPI" ? "w" : "a" });
    }
  };
  await nc.flush();
  return {
    async stop(n: number) {
      await nc.flush();
      sub.unsubscribe();
      await nc.close();
      if (everyMessage && all.length > 0) for (const e of all) process.stderr.write(`${(e.at - all[0]!.at).toFixed(1).padStart(8)} ${e.what}\n`);
      const red = [...lines.values()].filter((l) => l.some((e) => e.what === "d2"));
      const firstWpi = [...lines.values()].map((l) => (l.find((e) => e.what === "w")?.at ?? NaN) - l[0]!.at).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
      const q = (a: number[], p: number): number => Math.round(a[Math.min(a.length - 1, Math.floor(p * a.length))] ?? NaN);
      process.stderr.write(`commands: ${lines.size}, redelivered ${red.length}; first in-progress ack after delivery ms p50 ${q(firstWpi, 0.5)} p90 ${q(firstWpi, 0.9)} max ${q(firstWpi, 1)}\n`);
      for (const l of red.slice(0, 8)) process.stderr.write(`  ${l.map((e) => `${e.what}@${Math.round((e.at - l[0]!.at) / 100) / 10}`).join(" ")}\n`);
      return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, r2(v / n)]));
    },
  };
}
