// The coordinator's view of deploy_cordons (CordonAgent, UncordonAgent):
// rebuilt from the bucket at start and kept current by a watch, as
// releaseBook.ts does for desired releases, so resolving targets and
// convergence ask it without a round trip. A coordinator applies its own
// write at once (the answer and its next create see it); the others see it
// with the watch, a delivery later.
import type { KV, KvEntry } from "@nats-io/kv";
import { cordonRecord, errorMessage, parseCordonRecord, type CordonRecord, type Identity, type Logger } from "../../shared/src/index.js";
import { followBucket, type BucketFollower } from "./followBucket.js";

export class Cordons {
  readonly #records = new Map<string, { record: CordonRecord; revision: number }>();
  #follower: BucketFollower | undefined;
  /** Called when an agent is cordoned or uncordoned (after start): convergence looks at it again. */
  onChange: (agentId: string, cordon: CordonRecord | undefined) => void = () => undefined;

  constructor(
    readonly kv: KV,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#follower = await followBucket(this.kv, (e, live) => this.#apply(e, live));
  }

  #apply(e: KvEntry, notify: boolean): void {
    const prev = this.#records.get(e.key);
    if (prev && prev.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      // Deleted or purged with the nats CLI: nothing says it is cordoned any more.
      this.#records.delete(e.key);
      if (notify && prev?.record.cordoned) this.onChange(e.key, undefined);
      return;
    }
    let record: CordonRecord;
    try {
      record = parseCordonRecord(e.value, e.key);
    } catch (err) {
      // Only coordinators write here; an unreadable value cordons nothing, and says so.
      this.log.warn({ key: e.key, err: errorMessage(err) }, "ignoring invalid cordon record");
      return;
    }
    this.#records.set(e.key, { record, revision: e.revision });
    if (notify && record.cordoned !== (prev?.record.cordoned ?? false)) this.onChange(e.key, record.cordoned ? record : undefined);
  }

  /** How many agents are cordoned now. */
  get count(): number {
    let n = 0;
    for (const { record } of this.#records.values()) if (record.cordoned) n++;
    return n;
  }

  /** The agent's cordon, when it is cordoned. */
  get(agentId: string): CordonRecord | undefined {
    const r = this.#records.get(agentId)?.record;
    return r?.cordoned ? r : undefined;
  }

  /** Cordons (`reason` recorded) or uncordons the agent; stored before it returns. */
  async set(agentId: string, cordoned: boolean, reason: string, by: Identity): Promise<CordonRecord> {
    const record = cordonRecord(agentId, cordoned, cordoned ? reason : "", by);
    const revision = await this.kv.put(agentId, JSON.stringify(record));
    const prev = this.#records.get(agentId);
    if (!prev || prev.revision < revision) {
      this.#records.set(agentId, { record, revision });
      if (record.cordoned !== (prev?.record.cordoned ?? false)) this.onChange(agentId, record.cordoned ? record : undefined);
    }
    return record;
  }

  async close(): Promise<void> {
    await this.#follower?.stop();
  }
}
