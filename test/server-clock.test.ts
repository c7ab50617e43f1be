// The coordinator's estimate of the NATS servers' clock (serverClock.ts):
// the largest recent lower bound, on the monotonic clock, in whole ms.
// End to end (a coordinator minutes off): test/chaos-added-kinds.test.ts.
import { describe, expect, it } from "vitest";
import { ServerClock } from "../services/coordinator/src/serverClock.js";

describe("ServerClock", () => {
  it("reads the local wall clock until a reading arrives", () => {
    const c = new ServerClock();
    expect(c.synced).toBe(false);
    const before = Date.now();
    const now = c.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it("takes the largest recent bound (a slow delivery lowers only its own) and answers whole ms", () => {
    const c = new ServerClock();
    const server = 5_000_000_000_123.5;
    c.observe(server, 1000); // offset bound server - 1000
    c.observe(server - 40, 1000); // delivered 40 ms late: a lower bound
    const expected = Math.floor(performance.now() + (server - 1000));
    const now = c.now();
    expect(Number.isInteger(now)).toBe(true);
    expect(now - expected).toBeGreaterThanOrEqual(0);
    expect(now - expected).toBeLessThan(1000);
    expect(c.localOffsetMs()).toBeLessThan(0); // the servers are far ahead here
  });

  it("forgets bounds older than the last KEEP readings (a server clock stepped back is followed)", () => {
    const c = new ServerClock();
    c.observe(10_000_000, 0);
    for (let i = 0; i < ServerClock.KEEP; i++) c.observe(1_000_000, 0);
    const now = c.now();
    expect(now - Math.floor(performance.now() + 1_000_000)).toBeLessThan(1000);
  });
});
