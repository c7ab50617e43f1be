// The apply's stop signal (apply.ts eitherSignal): the agent's shutdown or
// a cancel's kill, whichever comes first. AbortSignal.any left a WeakRef in
// the shutdown signal's dependants per apply, for the life of the agent;
// this one leaves no listener behind once disposed.
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { eitherSignal } from "../services/agent/src/apply.js";

describe("eitherSignal", () => {
  it("aborts with the reason of whichever aborts first, once", () => {
    const a = new AbortController();
    const b = new AbortController();
    const { signal, dispose } = eitherSignal(a.signal, b.signal);
    expect(signal.aborted).toBe(false);
    b.abort("killed: the deployment was cancelled with kill_running");
    a.abort("shutdown");
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe("killed: the deployment was cancelled with kill_running");
    dispose();
  });

  it("is aborted at once when one already is", () => {
    const a = new AbortController();
    a.abort("shutdown");
    const { signal, dispose } = eitherSignal(a.signal, new AbortController().signal);
    expect(signal.reason).toBe("shutdown");
    dispose();
  });

  it("leaves nothing on the long-lived signal once disposed", () => {
    const shutdown = new AbortController();
    for (let i = 0; i < 1000; i++) {
      const { dispose } = eitherSignal(shutdown.signal, new AbortController().signal);
      dispose();
    }
    expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(0);
    // Disposed: a later shutdown reaches none of them.
    const { signal, dispose } = eitherSignal(shutdown.signal, new AbortController().signal);
    dispose();
    shutdown.abort("shutdown");
    expect(signal.aborted).toBe(false);
  });
});
