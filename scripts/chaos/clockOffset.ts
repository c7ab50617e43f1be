// Preloaded into one process of a chaos run (the clock-offset fault, with
// NODE_OPTIONS=--import=<this file>): its wall clock reads
// DEPLOY_CHAOS_CLOCK_OFFSET_MS away from everyone else's, as a VM whose clock
// is minutes off would, without touching the machine's clock (no root).
// Date.now() and new Date() shift; performance.now() (the monotonic clock
// the start lease and the liveness limits run on) does not. Inert without
// the variable.
const offsetMs = Number(process.env["DEPLOY_CHAOS_CLOCK_OFFSET_MS"] ?? 0);

if (Number.isFinite(offsetMs) && offsetMs !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offsetMs);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return realNow() + offsetMs;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}

export {};
