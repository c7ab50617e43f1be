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
//
// The bucket is kept in memory. When every NATS node restarts at once it
// comes back empty, its sequence numbers start again from 1, and a watch
// resumes after the last sequence it saw: it heard nothing until the new
// sequence passed the old one, for about as long as the cluster had been
// up (45 s up, 49 s deaf; a day up, a day with every coordinator taking
// itself for alone and sweeping every deployment). Each coordinator sees
// its own beats come back; when its stored beats stop coming back for a
// liveness window, it watches again from what the bucket holds now.
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
  /** performance.now() of the first of this coordinator's stored beats that the watch has not delivered back since, if any. */
  #unseenSince: number | undefined;
  #restarting = false;

  constructor(
    private readonly kv: KV,
    private readonly liveMs: number,
    private readonly log: Logger,
    /** Fed the server's time of each of this coordinator's own heartbeats as it comes back. */
    private readonly clock?: ServerClock,
  ) {}

  async start(): Promise<void> {
    await this.#beat();
    await this.#startWatch();
    // Four beats per liveness window: a member is given up after about four missed.
    this.#timer = setInterval(() => void this.#beat().then(() => this.#checkWatch()), Math.max(100, Math.floor(this.liveMs / 4)));
    this.#timer.unref();
  }

  async #startWatch(): Promise<void> {
    this.#unseenSince = undefined;
    const w = await this.kv.watch({ include: KvWatchInclude.LastValue });
    this.#watch = w;
    this.#watching = (async () => {
      for await (const e of w) {
        if (e.operation === "PUT") this.#seen.set(e.key, performance.now());
        else this.#seen.delete(e.key);
        if (e.key === this.id && e.operation === "PUT") {
          this.#unseenSince = undefined;
          this.#observe(e.created.getTime());
        }
      }
    })();
  }

  /** Stored beats of its own not delivered back for a liveness window: the watch is deaf (see above); it watches again. */
  async #checkWatch(): Promise<void> {
    if (!this.#watch || this.#restarting || this.#unseenSince === undefined || performance.now() - this.#unseenSince <= this.liveMs) return;
    this.#restarting = true;
    try {
      this.log.warn(
        { silentMs: Math.round(performance.now() - this.#unseenSince) },
        "the coordinators' watch delivers none of this coordinator's own heartbeats (deploy_coordinators emptied: every NATS node restarted at once?): watching it again",
      );
      this.#watch.stop();
      await this.#watching?.catch(() => undefined);
      await this.#startWatch();
    } catch (err) {
      this.log.warn({ err }, "could not watch the coordinators' bucket again; trying at the next heartbeat");
    } finally {
      this.#restarting = false;
    }
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
      this.#unseenSince ??= performance.now();
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
