// A coordinator's in-memory view of a KV bucket (the registry, the desired
// releases, the cordons, the freezes, the policies): watch first (updates
// only), then load what is there, so an update racing the load is never
// missed; the view keeps the higher revision of a key, whichever way it came.
import { KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { errorMessage, type Logger } from "../../shared/src/index.js";

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

/**
 * A bucket of records only coordinators write (cordons, freezes, policies),
 * as every coordinator keeps it: each key's highest revision, parsed. A
 * delete or purge (the nats CLI) removes the key's record; a value that
 * does not parse is logged and ignored, and the record before it stays. A
 * coordinator's own write is kept at once (put: its answer and its next
 * call see it); the others' come with the watch, a delivery later.
 */
export class FollowedRecords<T> {
  readonly #records = new Map<string, { record: T; revision: number }>();
  #follower: BucketFollower | undefined;
  /** Called when a key's record changes after start (the watch's, or this coordinator's put): before and after, undefined when there was none or it was deleted. */
  onChange: (key: string, prev: T | undefined, next: T | undefined) => void = () => undefined;

  constructor(
    readonly kv: KV,
    /** What a record is, for the log ("cordon", "freeze"). */
    private readonly kind: string,
    private readonly parse: (value: Uint8Array, key: string) => T,
    private readonly log: Logger,
    /** Keys that hold no record (freezeEdges.ts's markers). */
    private readonly skip: (key: string) => boolean = () => false,
  ) {}

  async start(): Promise<void> {
    this.#follower = await followBucket(this.kv, (e, live) => this.#apply(e, live));
  }

  #apply(e: KvEntry, live: boolean): void {
    if (this.skip(e.key)) return;
    const prev = this.#records.get(e.key);
    if (prev && prev.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      this.#records.delete(e.key);
      if (live && prev) this.onChange(e.key, prev.record, undefined);
      return;
    }
    let record: T;
    try {
      record = this.parse(e.value, e.key);
    } catch (err) {
      this.log.warn({ key: e.key, err: errorMessage(err) }, `ignoring invalid ${this.kind} record`);
      return;
    }
    this.#records.set(e.key, { record, revision: e.revision });
    if (live) this.onChange(e.key, prev?.record, record);
  }

  get(key: string): T | undefined {
    return this.#records.get(key)?.record;
  }

  /** Every key's record, in no order. */
  records(): T[] {
    return [...this.#records.values()].map((x) => x.record);
  }

  /** Every key's record with its revision. */
  entries(): { key: string; record: T; revision: number }[] {
    return [...this.#records.entries()].map(([key, { record, revision }]) => ({ key, record, revision }));
  }

  /** Stores `record` under `key` (JSON) and keeps it, unless the watch brought a later revision first. */
  async put(key: string, record: T): Promise<T> {
    const revision = await this.kv.put(key, JSON.stringify(record));
    const prev = this.#records.get(key);
    if (!prev || prev.revision < revision) {
      this.#records.set(key, { record, revision });
      this.onChange(key, prev?.record, record);
    }
    return record;
  }

  async stop(): Promise<void> {
    await this.#follower?.stop();
  }
}
