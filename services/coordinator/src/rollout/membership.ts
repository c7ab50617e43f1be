// Which coordinator sweeps which active deployment. Each coordinator beats
// its own key in deploy_coordinators; every coordinator watches the bucket
// and takes a coordinator for live while its key changed within the
// liveness limit (measured on the watcher's own monotonic clock, so a
// coordinator's clock offset from the servers' changes nothing). An active
// deployment is swept by one live coordinator, chosen by rendezvous hashing
// of (coordinator, deployment): the same choice on every coordinator that
// sees the same members, and when one goes away only its share moves. A
// second coordinator so adds capacity (before, every coordinator swept every
// deployment, and their compare-and-set appends conflicted).
//
// Ownership is a division of work, never a lock: events still wake whichever
// coordinator the shared consumer hands them to, and every decision is a
// compare-and-set append, so two coordinators that disagree for a moment (one
// has not yet seen another join or die) make no decision twice. A
// coordinator that dies (or is paused) leaves its share unswept for at most
// the liveness limit; one that stops cleanly deletes its key, and its share
// moves at once.
import { createHash, randomBytes } from "node:crypto";
import { KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import type { Logger } from "../../../shared/src/index.js";
import type { ServerClock } from "../serverClock.js";

/** Rendezvous hashing: the member with the highest hash of (member, key). */
export function ownerOf(members: readonly string[], key: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const score = createHash("sha1").update(`${m}/${key}`).digest().readUInt32BE(0);
    if (score > bestScore || (score === bestScore && m < best!)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

export class Membership {
  readonly id = `c-${randomBytes(6).toString("hex")}`;
  /** Member id → monotonic time its key last changed (as this process saw it). */
  readonly #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #watch: QueuedIterator<KvEntry> | undefined;
  #watching: Promise<void> | undefined;
  #lastCount = 0;

  constructor(
    private readonly kv: KV,
    private readonly liveMs: number,
    private readonly log: Logger,
    /** Fed the server's time of each of this coordinator's own heartbeats as it comes back. */
    private readonly clock?: ServerClock,
  ) {}

  async start(): Promise<void> {
    await this.#beat();
    this.#watch = await this.kv.watch({ include: KvWatchInclude.LastValue });
    const w = this.#watch;
    this.#watching = (async () => {
      for await (const e of w) {
        if (e.operation === "PUT") this.#seen.set(e.key, performance.now());
        else this.#seen.delete(e.key);
        if (e.key === this.id && e.operation === "PUT") this.#observe(e.created.getTime());
      }
    })();
    // Four beats per liveness window: a member is given up after about four missed.
    this.#timer = setInterval(() => void this.#beat(), Math.max(100, Math.floor(this.liveMs / 4)));
    this.#timer.unref();
  }

  #observe(serverMs: number): void {
    if (!this.clock) return;
    const first = !this.clock.synced;
    this.clock.observe(serverMs);
    const offsetMs = this.clock.localOffsetMs();
    // Beyond ordinary NTP error: say so once (correctness does not depend on it).
    if (first && Math.abs(offsetMs) > 1000) this.log.warn({ offsetMs }, "this host's clock is off from the NATS servers'; timeouts and liveness use the servers' clock");
  }

  async #beat(): Promise<void> {
    try {
      await this.kv.put(this.id, JSON.stringify({ at: new Date().toISOString(), pid: process.pid }));
    } catch (err) {
      this.log.debug({ err }, "coordinator heartbeat failed");
    }
  }

  /** The coordinators taken for live now (this one always). */
  live(): string[] {
    const now = performance.now();
    const out = [this.id];
    for (const [id, at] of this.#seen) if (id !== this.id && now - at <= this.liveMs) out.push(id);
    if (out.length !== this.#lastCount) {
      this.log.info({ coordinators: out.length }, "live coordinators changed; active deployments are shared among them");
      this.#lastCount = out.length;
    }
    return out;
  }

  /** A function telling whether this coordinator sweeps a deployment, on one view of the members. */
  owner(): (deploymentId: string) => boolean {
    const members = this.live();
    return members.length === 1 ? () => true : (id) => ownerOf(members, id) === this.id;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#watch?.stop();
    await this.#watching?.catch(() => undefined);
    // Its share moves at once, not after the liveness limit.
    await this.kv.delete(this.id).catch(() => undefined);
  }
}
