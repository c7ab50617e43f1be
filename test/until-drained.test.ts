// untilDrained (queries/watchDeployment.ts): a watch whose stream is full
// waits for it to drain, or for the watch to be aborted (a client gone
// while its stream was full never drains it: the watch would hold its
// consumer and its watches.max slot for ever).
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { untilDrained } from "../services/coordinator/src/queries/watchDeployment.js";

describe("untilDrained", () => {
  it("ends on drain, leaving no listener behind", async () => {
    const stream = new EventEmitter();
    const abort = new AbortController();
    const waiting = untilDrained(stream, abort.signal);
    stream.emit("drain");
    await waiting;
    expect(stream.listenerCount("drain")).toBe(0);
  });

  it("ends when the watch is aborted though the stream never drains, and at once when it was aborted before", async () => {
    const stream = new EventEmitter();
    const abort = new AbortController();
    const waiting = untilDrained(stream, abort.signal);
    abort.abort();
    await waiting;
    expect(stream.listenerCount("drain")).toBe(0);
    await untilDrained(stream, abort.signal);
    expect(stream.listenerCount("drain")).toBe(0);
  });
});
