// The current values of every key of a KV bucket matching a filter, in one
// batched direct get (nats-server 2.11+: multi_last), where KV keys() makes
// an ordered consumer per call and, when no key matches, leaves it behind
// (about 300 idle consumers per coordinator sweeping every second, before).
// A server answers "too many results" past its batch limit (1,500 keys did,
// in a test on 2.15.2): then the keys are listed and read one by one.
import type { KV } from "@nats-io/kv";
import type { JetStreamManager } from "@nats-io/jetstream";
import { errorMessage } from "../errors.js";
import { kvKeySubject, kvStreamName } from "../names.js";

/** Header the KV client marks deletes and purges with. */
const KV_OPERATION_HDR = "KV-Operation";

export interface KvValue {
  key: string;
  value: Uint8Array;
}

export async function kvLastValues(jsm: JetStreamManager, kv: KV, bucket: string, filter: string): Promise<KvValue[]> {
  const out: KvValue[] = [];
  const prefix = kvKeySubject(bucket, "");
  try {
    const it = await jsm.direct.getLastMessagesFor(kvStreamName(bucket), { multi_last: [kvKeySubject(bucket, filter)] });
    for await (const m of it) {
      const op = m.header?.get(KV_OPERATION_HDR);
      if (op === "DEL" || op === "PURGE") continue;
      out.push({ key: m.subject.slice(prefix.length), value: m.data });
    }
    return out;
  } catch (err) {
    if (!/too many results/i.test(errorMessage(err))) throw err;
  }
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  for (const key of keys) {
    const e = await kv.get(key);
    if (e && e.operation === "PUT") out.push({ key, value: e.value });
  }
  return out;
}
