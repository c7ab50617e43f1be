// The coordinator's view of deploy_freezes (FreezeEnvironment,
// UnfreezeEnvironment): rebuilt from the bucket at start and kept current by
// a watch, as cordons.ts does, so a create asks it without a round trip.
// Keyed as stored: <environment>, or <environment>.<name> for a named freeze. A
// coordinator applies its own write at once (the answer and its next create
// see it); the others see it with the watch, a delivery later. A freeze with
// an end needs nothing to lift it: it is compared with the server's clock
// whenever it is asked.
import type { KV } from "@nats-io/kv";
import { freezeActive, freezeHolds, freezeKey, freezeRecord, parseFreezeRecord, type FreezeRecord, type Identity, type Logger } from "../../shared/src/index.js";
import { FollowedRecords } from "./followBucket.js";
import { isEdgeKey } from "./freezeEdges.js";

export class Freezes {
  readonly #book: FollowedRecords<FreezeRecord>;

  constructor(
    kv: KV,
    /** The server's clock (serverClock.ts), in ms: a freeze's start and end are on it. */
    private readonly now: () => number,
    log: Logger,
  ) {
    // A window's edge, recorded for the notifier (freezeEdges.ts), is not a freeze.
    this.#book = new FollowedRecords(kv, "freeze", parseFreezeRecord, log, isEdgeKey);
  }

  get kv(): KV {
    return this.#book.kv;
  }

  start(): Promise<void> {
    return this.#book.start();
  }

  /** The environment's freeze in force now, if any (its unnamed one first, then by name). */
  get(environment: string): FreezeRecord | undefined {
    const now = this.now();
    return this.#sorted().find((r) => r.environment === environment && freezeActive(r, now));
  }

  /** Every freeze set and not ended (in force now, or waiting for its next window), with whether it is in force now. */
  list(): { record: FreezeRecord; inForce: boolean }[] {
    const now = this.now();
    return this.#sorted()
      .filter((r) => freezeHolds(r, now))
      .map((record) => ({ record, inForce: freezeActive(record, now) }));
  }

  /** Every freeze as stored, with its key and revision (freezeEdges.ts compares them tick by tick). */
  entries(): { key: string; record: FreezeRecord; revision: number }[] {
    return this.#book.entries();
  }

  /** Whether the record refuses deployments now. */
  inForce(r: FreezeRecord): boolean {
    return freezeActive(r, this.now());
  }

  /** How many environments are frozen now. */
  get count(): number {
    const now = this.now();
    return new Set(this.#sorted().filter((r) => freezeActive(r, now)).map((r) => r.environment)).size;
  }

  /** By environment, the unnamed freeze first, then by name. */
  #sorted(): FreezeRecord[] {
    return this.#book
      .records()
      .sort((a, b) => a.environment.localeCompare(b.environment) || (a.name ?? "").localeCompare(b.name ?? ""));
  }

  /**
   * Freezes (until `more.untilMs`, or until unfrozen; within `more.windows`
   * only, when given) or unfreezes the environment's freeze `more.name`
   * (none: its unnamed one); stored before it returns. Unfreezing a freeze
   * that does not hold writes nothing and answers with its last unfreeze
   * (or, never frozen or ended by itself, an unfreeze's record not stored).
   */
  async set(environment: string, frozen: boolean, reason: string, by: Identity, more: { name?: string; untilMs?: number; windows?: string[]; timeZone?: string } = {}): Promise<FreezeRecord> {
    const now = this.now();
    const key = freezeKey(environment, more.name);
    if (!frozen) {
      const prev = this.#book.get(key);
      // Nothing holds (never frozen, lifted, or ended by itself): nothing to write.
      if (!freezeHolds(prev, now)) return prev && !prev.frozen ? prev : freezeRecord(environment, false, "", by, new Date(now), { ...(more.name ? { name: more.name } : {}) });
    }
    const record = freezeRecord(environment, frozen, reason, by, new Date(now), {
      ...(more.name ? { name: more.name } : {}),
      ...(more.untilMs !== undefined ? { until: new Date(more.untilMs) } : {}),
      ...(more.windows ? { windows: more.windows } : {}),
      ...(more.timeZone ? { timeZone: more.timeZone } : {}),
    });
    return this.#book.put(key, record);
  }

  close(): Promise<void> {
    return this.#book.stop();
  }
}
