// The coordinator's view of deploy_freezes (FreezeEnvironment,
// UnfreezeEnvironment): rebuilt from the bucket at start and kept current by
// a watch, as cordons.ts does, so a create asks it without a round trip. A
// coordinator applies its own write at once (the answer and its next create
// see it); the others see it with the watch, a delivery later. A freeze with
// an end needs nothing to lift it: it is compared with the server's clock
// whenever it is asked.
import type { KV, KvEntry } from "@nats-io/kv";
import { errorMessage, freezeActive, freezeRecord, parseFreezeRecord, type FreezeRecord, type Identity, type Logger } from "../../shared/src/index.js";
import { followBucket, type BucketFollower } from "./followBucket.js";

export class Freezes {
  readonly #records = new Map<string, { record: FreezeRecord; revision: number }>();
  #follower: BucketFollower | undefined;

  constructor(
    readonly kv: KV,
    /** The server's clock (serverClock.ts), in ms: a freeze's start and end are on it. */
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#follower = await followBucket(this.kv, (e) => this.#apply(e));
  }

  #apply(e: KvEntry): void {
    const prev = this.#records.get(e.key);
    if (prev && prev.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      // Deleted or purged with the nats CLI: nothing says it is frozen any more.
      this.#records.delete(e.key);
      return;
    }
    try {
      this.#records.set(e.key, { record: parseFreezeRecord(e.value, e.key), revision: e.revision });
    } catch (err) {
      // Only coordinators write here; an unreadable value freezes nothing, and says so.
      this.log.warn({ key: e.key, err: errorMessage(err) }, "ignoring invalid freeze record");
    }
  }

  /** The environment's freeze, when it is frozen now. */
  get(environment: string): FreezeRecord | undefined {
    const r = this.#records.get(environment)?.record;
    return freezeActive(r, this.now()) ? r : undefined;
  }

  /** Every freeze in force now, by environment. */
  active(): FreezeRecord[] {
    const now = this.now();
    return [...this.#records.values()]
      .map((x) => x.record)
      .filter((r) => freezeActive(r, now))
      .sort((a, b) => a.environment.localeCompare(b.environment));
  }

  /** How many environments are frozen now. */
  get count(): number {
    return this.active().length;
  }

  /**
   * Freezes (until `untilMs`, or until unfrozen) or unfreezes the
   * environment; stored before it returns. Unfreezing an environment that
   * is not frozen writes nothing and answers with its last record (or none).
   */
  async set(environment: string, frozen: boolean, reason: string, by: Identity, untilMs?: number): Promise<FreezeRecord> {
    const now = this.now();
    if (!frozen) {
      const prev = this.#records.get(environment)?.record;
      if (!freezeActive(prev, now)) return prev ?? freezeRecord(environment, false, "", by, new Date(now));
    }
    const record = freezeRecord(environment, frozen, reason, by, new Date(now), untilMs === undefined ? undefined : new Date(untilMs));
    const revision = await this.kv.put(environment, JSON.stringify(record));
    const prev = this.#records.get(environment);
    if (!prev || prev.revision < revision) this.#records.set(environment, { record, revision });
    return record;
  }

  async close(): Promise<void> {
    await this.#follower?.stop();
  }
}
