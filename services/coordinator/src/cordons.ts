// The coordinator's view of deploy_cordons (CordonAgent, UncordonAgent):
// rebuilt from the bucket at start and kept current by a watch, as
// releaseBook.ts does for desired releases, so resolving targets and
// convergence ask it without a round trip. A coordinator applies its own
// write at once (the answer and its next create see it); the others see it
// with the watch, a delivery later.
import type { KV } from "@nats-io/kv";
import { cordonRecord, parseCordonRecord, type CordonRecord, type Identity, type Logger } from "../../shared/src/index.js";
import { FollowedRecords } from "./followBucket.js";

export class Cordons {
  readonly #book: FollowedRecords<CordonRecord>;
  /** Called when an agent is cordoned or uncordoned (after start): convergence looks at it again. */
  onChange: (agentId: string, cordon: CordonRecord | undefined) => void = () => undefined;

  constructor(kv: KV, log: Logger) {
    this.#book = new FollowedRecords(kv, "cordon", parseCordonRecord, log);
    this.#book.onChange = (agentId, prev, next) => {
      if ((next?.cordoned ?? false) !== (prev?.cordoned ?? false)) this.onChange(agentId, next?.cordoned ? next : undefined);
    };
  }

  get kv(): KV {
    return this.#book.kv;
  }

  start(): Promise<void> {
    return this.#book.start();
  }

  /** How many agents are cordoned now. */
  get count(): number {
    let n = 0;
    for (const record of this.#book.records()) if (record.cordoned) n++;
    return n;
  }

  /** The agent's cordon, when it is cordoned. */
  get(agentId: string): CordonRecord | undefined {
    const r = this.#book.get(agentId);
    return r?.cordoned ? r : undefined;
  }

  /** Cordons (`reason` recorded) or uncordons the agent; stored before it returns. */
  set(agentId: string, cordoned: boolean, reason: string, by: Identity): Promise<CordonRecord> {
    return this.#book.put(agentId, cordonRecord(agentId, cordoned, cordoned ? reason : "", by));
  }

  close(): Promise<void> {
    return this.#book.stop();
  }
}
