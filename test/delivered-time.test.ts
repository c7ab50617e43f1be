// A delivered event's time must be the time the same message has when read
// back from the stream (Date.parse of its RFC 3339 time truncates the
// nanoseconds), or a fold from deliveries differs from the stream's fold.
// JsMsg.time divides the nanoseconds as a float, which rounds them past 2^53.
import { describe, expect, it } from "vitest";
import type { JsMsg } from "@nats-io/jetstream";
import { deliveredTime } from "../services/shared/src/index.js";

describe("deliveredTime", () => {
  it("is the stored message's time, to the millisecond, even a few nanoseconds before the next one", () => {
    for (const iso of ["2026-12-02T09:18:15.123999999Z", "2026-12-02T09:18:15.999999990Z", "2026-12-02T09:18:15.000000001Z"]) {
      const [whole, frac] = iso.slice(0, -1).split(".");
      const ns = BigInt(Date.parse(`${whole}Z`)) * BigInt(1_000_000) + BigInt(frac!.padEnd(9, "0"));
      const m = { timestampNanos: ns } as unknown as JsMsg;
      expect(deliveredTime(m).getTime(), iso).toBe(Date.parse(iso));
    }
  });
});
