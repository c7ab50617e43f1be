// A coordinator's in-memory view of a KV bucket (the registry, the desired
// releases, the cordons): watch first (updates only), then load what is
// there, so an update racing the load is never missed; the view keeps the
// higher revision of a key, whichever way it came.
import { KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";

export interface BucketFollower {
  /** Stops the watch and waits for its loop. */
  stop(): Promise<void>;
}

/** Hands every entry of `kv` to `apply`: `live` false for those loaded at start, true for the watch's updates after. */
export async function followBucket(kv: KV, apply: (e: KvEntry, live: boolean) => void): Promise<BucketFollower> {
  const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
  const done = (async () => {
    for await (const e of watch) apply(e, true);
  })();
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  for (let i = 0; i < keys.length; i += 64) {
    const entries = await Promise.all(keys.slice(i, i + 64).map((k) => kv.get(k)));
    for (const e of entries) if (e) apply(e, false);
  }
  return {
    async stop() {
      watch.stop();
      await done.catch(() => undefined);
    },
  };
}
