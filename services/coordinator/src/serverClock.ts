// The servers' clock as this coordinator can tell it. Delivery and apply
// timeouts, agent liveness and lock ages compare "now" with times a server
// stamped (a stored event's time, a KV entry's created time): read on the
// coordinator's own wall clock, a coordinator minutes off timed out every
// dispatched target at once (+2 min) or none for minutes (-5 min), and took
// live agents for offline (the fault suite's clock-offset kind, seed 10011).
//
// Each time this coordinator sees its own membership heartbeat come back
// through its watch, the entry's created time is a reading of the servers'
// clock taken before it arrived: server time ≥ created + 0 at arrival, so
// `created - performance.now()` is a lower bound of the offset between the
// servers' clock and this process's monotonic one. The largest of the recent
// bounds is the estimate (a slow delivery only lowers its own bound), and
// now() = monotonic now + offset: the local wall clock is never read once a
// reading has arrived, so stepping it changes nothing. Underestimates make
// timeouts fire late by the delivery lag (milliseconds), never early.
export class ServerClock {
  /** Recent lower bounds of (server time - performance.now()), newest last. */
  readonly #bounds: number[] = [];
  /** Bounds kept: with four heartbeats per liveness window, a few windows' worth. */
  static readonly KEEP = 16;

  /** A server-stamped time of a write just seen (epoch ms). */
  observe(serverMs: number, monotonicAtArrival = performance.now()): void {
    this.#bounds.push(serverMs - monotonicAtArrival);
    if (this.#bounds.length > ServerClock.KEEP) this.#bounds.shift();
  }

  /** Whether a reading has arrived (before one, now() is the local wall clock). */
  get synced(): boolean {
    return this.#bounds.length > 0;
  }

  /** The servers' time now, in whole epoch ms (ids are made of it). */
  now(): number {
    if (this.#bounds.length === 0) return Date.now();
    return Math.floor(performance.now() + Math.max(...this.#bounds));
  }

  /** Estimated local wall clock minus the servers' clock, in ms (logged when it is large). */
  localOffsetMs(): number {
    return Date.now() - this.now();
  }
}
