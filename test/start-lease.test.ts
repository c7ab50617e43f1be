// The agent's start lease (issue 16): it starts nothing unless, at every
// moment since it claimed the target, an acknowledged heartbeat had been sent
// less than the lease before. Real clocks, small numbers; the end-to-end case
// (an agent SIGSTOPped after its claim) is in test/faults.test.ts.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Registration } from "../services/agent/src/registration.js";
import { runExecutable } from "../services/agent/src/runner.js";
import type { AgentConfig } from "../services/agent/src/config.js";
import { createLogger } from "../services/shared/src/index.js";

function registration(put: () => Promise<unknown> = () => Promise.resolve(1)): Registration {
  const config = { id: "a1", environment: "prod", apps: {}, labels: {} } as unknown as AgentConfig;
  return new Registration({ agents: { put } } as never, config, 60_000, createLogger("test", "silent"));
}

describe("start lease", () => {
  it("holds while heartbeats keep coming; breaks on a gap since the claim, even after heartbeats resume", async () => {
    const reg = registration();
    await reg.beat();
    const claimAt = performance.now();
    expect(reg.leaseProblem(claimAt, 1_000)).toBeUndefined();
    await sleep(60);
    await reg.beat();
    expect(reg.leaseProblem(claimAt, 1_000)).toBeUndefined();
    // A 60 ms gap since the claim is too long for a 30 ms lease, though a beat came after it.
    expect(reg.leaseProblem(claimAt, 30)).toMatch(/^start lease expired: \d+ ms without an acknowledged heartbeat since this agent claimed the target \(lease 30 ms/);
    // A gap before the claim does not count.
    const later = performance.now();
    await reg.beat();
    expect(reg.leaseProblem(later, 30)).toBeUndefined();
  });

  it("breaks with no heartbeat acknowledged at all, or when heartbeats stop being acknowledged", async () => {
    let fail = false;
    const reg = registration(() => (fail ? Promise.reject(new Error("no answer")) : Promise.resolve(1)));
    expect(reg.leaseProblem(performance.now(), 1_000)).toBe("start lease expired: no heartbeat acknowledged");
    await reg.beat();
    const claimAt = performance.now();
    fail = true;
    await sleep(50);
    await reg.beat().catch(() => undefined);
    expect(reg.leaseProblem(claimAt, 20)).toMatch(/^start lease expired/);
  });

  it("breaks when beats sent on time are acknowledged late (a stalled link delivers them late: the coordinator heard nothing meanwhile)", async () => {
    let stalledUntil = 0;
    const reg = registration(() => sleep(Math.max(0, stalledUntil - performance.now())).then(() => 1));
    await reg.beat();
    const claimAt = performance.now();
    // The link stalls for 90 ms; beats go out every 20 ms meanwhile and all arrive when it resumes.
    stalledUntil = performance.now() + 90;
    const beats: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      beats.push(reg.beat());
      await sleep(20);
    }
    await Promise.all(beats);
    await reg.beat();
    // Sent every 20 ms, yet the server heard nothing for ~90 ms.
    expect(reg.leaseProblem(claimAt, 60)).toMatch(/^start lease expired/);
    expect(reg.leaseProblem(claimAt, 1_000)).toBeUndefined();
  });

  it("counts the won race as the beat in force at the claim: an idle agent stores no heartbeat (registration.ts)", async () => {
    const reg = registration();
    await reg.beat();
    await sleep(100); // idle: heartbeats go unstored
    const claimAt = performance.now();
    // Without the claim, the last stored beat is 100 ms old.
    expect(reg.leaseProblem(claimAt, 50)).toMatch(/^start lease expired/);
    const idle = reg.busy(claimAt);
    expect(reg.leaseProblem(claimAt, 50)).toBeUndefined();
    await reg.beat();
    expect(reg.leaseProblem(claimAt, 50)).toBeUndefined();
    await sleep(60);
    expect(reg.leaseProblem(claimAt, 50)).toMatch(/^start lease expired: \d+ ms without an acknowledged heartbeat/);
    idle();
    reg.stop();
  });

  it("applies back to back do not hold heartbeats back: one still goes out every interval", async () => {
    let puts = 0;
    const config = { id: "a1", environment: "prod", apps: {}, labels: {}, idleHeartbeatIntervalMs: 0 } as unknown as AgentConfig;
    const reg = new Registration({ agents: { put: () => Promise.resolve(++puts) } } as never, config, 200, createLogger("test", "silent"));
    await reg.start({});
    const started = puts;
    // An apply of 10 ms every 30 ms for 1.2 s: each used to put the next beat off by half an interval.
    const until = performance.now() + 1200;
    while (performance.now() < until) {
      const idle = reg.busy(performance.now());
      await sleep(10);
      idle();
      await sleep(20);
    }
    reg.stop();
    // One every 200 ms at least: 6 in 1.2 s, give or take the timers.
    expect(puts - started).toBeGreaterThanOrEqual(4);
  });

  it("the entry's first write is retried when JetStream is not ready yet, rather than the agent exiting", async () => {
    let calls = 0;
    const reg = registration(() => (++calls < 3 ? Promise.reject(new Error("jetstream is not enabled")) : Promise.resolve(1)));
    await reg.start({});
    expect(calls).toBe(3);
    reg.stop();
  });

  it("breaks when the agent learns of its win later than the lease after racing (a lost or delayed reply), heartbeats or not", () => {
    expect(Registration.confirmationProblem(1_000, 3_000, 2_700)).toBeUndefined();
    // Seed 40271 of the fault suite: two replies to target.started dropped, the win learned 3.2 s after the race.
    expect(Registration.confirmationProblem(1_000, 4_249, 2_700)).toBe(
      "start lease expired: this agent learned it had won the target 3249 ms after racing for it (lease 2700 ms; a lost or delayed reply)",
    );
  });

  it("a run refused by mayStart starts no process", async () => {
    const r = await runExecutable({
      file: "/bin/sh",
      args: ["-c", "exit 0"],
      env: {},
      timeoutMs: 5_000,
      maxLines: 10,
      maxLineLength: 100,
      onLines: () => undefined,
      mayStart: () => "start lease expired: test",
    });
    expect(r).toMatchObject({ outcome: "failed", exitCode: null, message: "not started: start lease expired: test" });
  });
});
