// The state machine as pure functions: fold (events → state) and plan
// (state + clock → decisions). No NATS needed.
import { describe, expect, it } from "vitest";
import { MAX_DISPATCH_BATCH, countTargets, dispatchedCount, encode, foldAll, foldEvent, makeEvent, parseEvent, revertToOf, targetIds, type DeploymentRecord, type DeploymentSpec, type EventBody, type StoredEvent } from "../services/shared/src/index.js";
import { CANCEL_COMPLETE_MS, cancelDecisions, plan } from "../services/coordinator/src/rollout/plan.js";

const spec: DeploymentSpec = {
  id: "d-1",
  requestId: "r-1",
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  strategy: { maxConcurrency: 2, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
  targets: ["a1", "a2", "a3"],
  requestedBy: "",
};

class Log {
  seq = 0;
  readonly events: StoredEvent[] = [];
  rec: DeploymentRecord | undefined;
  ignored: (string | undefined)[] = [];
  add(source: string, body: EventBody, at = 0): this {
    const se = { seq: ++this.seq, time: new Date(at).toISOString(), source, event: makeEvent("d-1", body) };
    this.events.push(se);
    const r = foldEvent(this.rec, se);
    this.rec = r.record;
    this.ignored.push(r.ignored);
    return this;
  }
  get lastIgnored(): string | undefined {
    return this.ignored.at(-1);
  }
}

const C = "coordinator";
const ctx = (now: number) => ({ now, lastHeartbeat: () => now, agentLiveMs: 3000, applyTimeoutGraceMs: 1000 });

function running(): Log {
  return new Log().add(C, { type: "deployment.created", spec }).add(C, { type: "deployment.started" });
}

describe("fold", () => {
  it("walks a target from PENDING to SUCCEEDED and agrees with a fold from scratch", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add("a1", { type: "target.progress", agentId: "a1", lines: ["hello", ""], linesCut: 0 })
      .add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "exit code 0", exitCode: 0, durationMs: 5 });
    expect(log.rec!.targets.a1).toMatchObject({ state: "SUCCEEDED", lastOutput: "hello", startedSeq: 4 });
    expect(log.rec!.lastSeq).toBe(6);
    expect(log.rec!.lastCoordinatorSeq).toBe(3);
    expect(foldAll(log.events)).toEqual(log.rec);
  });

  it("a cancel cancels pending targets at once and dispatched ones by their race; in-flight applies go on", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "target.dispatched", agentId: "a2" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add(C, { type: "deployment.cancel_requested", reason: "stop" });
    expect(log.rec!.targets.a3!.state).toBe("CANCELLED");
    expect(log.rec!.targets.a2!.state).toBe("DISPATCHED");
    expect(plan(log.rec!, ctx(0))).toEqual([{ type: "target.cancelled", agentId: "a2", message: "cancelled: stop" }]);
    // Appended on a2's own subject (the race its agent's start would have lost).
    log.add("a2", { type: "target.cancelled", agentId: "a2", message: "cancelled: stop" });
    expect(log.rec!.targets.a2!.state).toBe("CANCELLED");
    expect(log.rec!.targets.a1!.state).toBe("APPLYING");
    log.add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    expect(plan(log.rec!, ctx(0))).toEqual([expect.objectContaining({ type: "deployment.finished", state: "CANCELLED" })]);
  });

  it("a cancel is written target.cancelled first, then its request; one under way frees no slot, and one left half-way is completed", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "target.dispatched", agentId: "a2" })
      .add("a1", { type: "target.started", agentId: "a1" });
    const request = { type: "deployment.cancel_requested" as const, reason: "stop", by: "dan", byVia: "token" as const };
    // queries/cancelDeployment.ts and max_pause write these, in this order.
    expect(cancelDecisions(log.rec!, request)).toEqual([{ type: "target.cancelled", agentId: "a2", message: "cancelled: stop" }, request]);
    // Its caller dies after the target.cancelled (at 1 s on the stream's clock).
    log.add("a2", { type: "target.cancelled", agentId: "a2", message: "cancelled: stop" }, 1000);
    log.add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    // a2's slot is not given to a3, and nothing finishes the deployment FAILED meanwhile.
    expect(plan(log.rec!, ctx(1000 + CANCEL_COMPLETE_MS - 1))).toEqual([]);
    const completed = plan(log.rec!, ctx(1000 + CANCEL_COMPLETE_MS));
    expect(completed).toEqual([{ type: "deployment.cancel_requested", reason: "stop (completed by the coordinator: its caller did not finish it)", by: "coordinator", byVia: "coordinator" }]);
    for (const d of completed) log.add(C, d);
    expect(log.rec!.targets.a3).toMatchObject({ state: "CANCELLED", message: "cancelled: stop (completed by the coordinator: its caller did not finish it)" });
    expect(plan(log.rec!, ctx(7000))).toEqual([expect.objectContaining({ type: "deployment.finished", state: "CANCELLED" })]);
    expect(foldAll(log.events)).toEqual(log.rec);
  });

  it("max_pause cancels the dispatched targets before its request, as a caller's cancel does", () => {
    const paused = new Log()
      .add(C, { type: "deployment.created", spec: { ...spec, strategy: { ...spec.strategy, maxPauseMs: 1000, deliveryTimeoutMs: 60_000 } } })
      .add(C, { type: "deployment.started" })
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "deployment.paused", reason: "look", by: "dan" });
    expect(plan(paused.rec!, ctx(1001))).toEqual([
      { type: "target.cancelled", agentId: "a1", message: "cancelled: paused for longer than max_pause 1s" },
      { type: "deployment.cancel_requested", reason: "paused for longer than max_pause 1s", by: "coordinator", byVia: "coordinator" },
    ]);
  });

  it("kill_running: on the first cancel, or added by a second; a second without it, or a third, changes nothing", () => {
    const killing = running().add(C, { type: "target.dispatched", agentId: "a1" }).add(C, { type: "deployment.cancel_requested", reason: "stop", kill: true });
    expect(killing.rec).toMatchObject({ cancelRequested: true, killRequested: true, message: "cancelled: stop" });
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add(C, { type: "deployment.cancel_requested", reason: "stop" });
    expect(log.rec!.killRequested).toBeUndefined();
    log.add(C, { type: "deployment.cancel_requested", reason: "again" });
    expect(log.lastIgnored).toBe("deployment is already cancelling");
    log.add(C, { type: "deployment.cancel_requested", reason: "kill it", kill: true });
    expect(log.lastIgnored).toBeUndefined();
    // The first cancel's reason stays the deployment's message.
    expect(log.rec).toMatchObject({ cancelRequested: true, killRequested: true, message: "cancelled: stop" });
    log.add(C, { type: "deployment.cancel_requested", reason: "", kill: true });
    expect(log.lastIgnored).toBe("deployment is already cancelling");
    // The killed apply's result ends the target FAILED, and the deployment CANCELLED.
    log.add("a1", { type: "target.result", agentId: "a1", outcome: "FAILED", message: "killed: the deployment was cancelled with kill_running", exitCode: null, durationMs: 1 });
    expect(plan(log.rec!, ctx(0))).toEqual([expect.objectContaining({ type: "deployment.finished", state: "CANCELLED" })]);
    expect(foldAll(log.events)).toEqual(log.rec);
  });

  it("a revert on the first cancel, or added by a second: the verdict names it, and revertToOf gives the release; a second revert changes nothing", () => {
    const v0 = { deploymentId: "d-0", version: "v0", release: "v0-00000000" };
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add(C, { type: "deployment.cancel_requested", reason: "alarm" });
    expect(log.rec!.cancelRevertTo).toBeUndefined();
    log.add(C, { type: "deployment.cancel_requested", reason: "roll back too", revertTo: v0 });
    expect(log.lastIgnored).toBeUndefined();
    expect(log.rec).toMatchObject({ cancelRequested: true, cancelRevertTo: v0, message: "cancelled: alarm" });
    expect(log.rec!.killRequested).toBeUndefined();
    log.add(C, { type: "deployment.cancel_requested", reason: "", revertTo: { ...v0, version: "other" } });
    expect(log.lastIgnored).toBe("deployment is already cancelling");
    expect(revertToOf(log.rec!)).toBeUndefined(); // not terminal yet
    log.add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    const [finished] = plan(log.rec!, ctx(0));
    expect(finished).toEqual({ type: "deployment.finished", state: "CANCELLED", message: "cancelled: alarm; revert: bringing 1 changed target(s) back to v0 (release v0-00000000)" });
    log.add(C, finished!);
    expect(revertToOf(log.rec!)).toEqual(v0);
    expect(foldAll(log.events)).toEqual(log.rec);
    // Nothing started: nothing to bring back, and the verdict says so.
    const none = running().add(C, { type: "deployment.cancel_requested", reason: "", revertTo: v0 });
    expect(plan(none.rec!, ctx(0))).toEqual([{ type: "deployment.finished", state: "CANCELLED", message: "cancelled; revert: nothing to restore (no target started applying)" }]);
  });

  it("a start whose agent won the race counts even after a cancel was requested", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "deployment.cancel_requested", reason: "" })
      .add("a1", { type: "target.started", agentId: "a1" });
    expect(log.rec!.targets.a1!.state).toBe("APPLYING");
  });

  it("a decline after the agent's own start won ends the target; any other decline after a start changes nothing", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "target.dispatched", agentId: "a2" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add("a2", { type: "target.started", agentId: "a2" })
      .add(C, { type: "deployment.cancel_requested", reason: "stop" });
    // a1's look after its race saw the cancel: it ran nothing.
    log.add("a1", { type: "target.declined", agentId: "a1", reason: "the deployment is being cancelled: not started", afterStart: true });
    expect(log.rec!.targets.a1).toMatchObject({ state: "CANCELLED", message: "declined by the agent: the deployment is being cancelled: not started" });
    // a2 lost its journal and found its target's race taken: that start may have run.
    log.add("a2", { type: "target.declined", agentId: "a2", reason: "the target's start is already stored: not started" });
    expect(log.lastIgnored).toMatch(/APPLYING/);
    expect(log.rec!.targets.a2!.state).toBe("APPLYING");
    // Without a cancel, a decline after the start is a failure of that target.
    const other = running().add(C, { type: "target.dispatched", agentId: "a1" }).add("a1", { type: "target.started", agentId: "a1" });
    other.add("a1", { type: "target.declined", agentId: "a1", reason: "deployment does not exist", afterStart: true });
    expect(other.rec!.targets.a1!.state).toBe("FAILED");
    expect(foldAll(log.events)).toEqual(log.rec);
  });

  it("ignores a delivery timeout decided before the agent's start reached the stream", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add(C, { type: "target.timed_out", agentId: "a1", phase: "delivery", message: "late" });
    expect(log.lastIgnored).toMatch(/APPLYING/);
    expect(log.rec!.targets.a1!.state).toBe("APPLYING");
  });

  it("records a result after TIMED_OUT as late and never reopens the target", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add(C, { type: "target.timed_out", agentId: "a1", phase: "apply", message: "silent" })
      .add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "ok", exitCode: 0, durationMs: 1 });
    expect(log.rec!.targets.a1).toMatchObject({ state: "TIMED_OUT", lateResult: "SUCCEEDED: ok" });
  });

  it("ignores events an agent publishes about another agent or in a coordinator's name", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" });
    log.add("a2", { type: "target.started", agentId: "a1" });
    expect(log.rec!.targets.a1!.state).toBe("DISPATCHED");
    log.add("a2", { type: "deployment.finished", state: "SUCCEEDED", message: "forged" });
    expect(log.rec!.state).toBe("RUNNING");
    log.add(C, { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "forged", exitCode: 0, durationMs: 0 });
    expect(log.rec!.targets.a1!.state).toBe("DISPATCHED");
  });

  it("terminal is final", () => {
    const log = running()
      .add(C, { type: "deployment.cancel_requested", reason: "" })
      .add(C, { type: "deployment.finished", state: "CANCELLED", message: "cancelled" })
      .add(C, { type: "deployment.finished", state: "SUCCEEDED", message: "again" })
      .add(C, { type: "target.dispatched", agentId: "a1" });
    expect(log.rec!.state).toBe("CANCELLED");
    expect(log.rec!.targets.a1!.state).toBe("CANCELLED");
  });
});

describe("plan", () => {
  it("starts by dispatching up to max_concurrency in target order", () => {
    const log = new Log().add(C, { type: "deployment.created", spec });
    // The first dispatch starts the deployment (no deployment.started before
    // it); several targets are one decision (one compare-and-set append).
    const first = plan(log.rec!, ctx(0));
    expect(first).toEqual([{ type: "targets.dispatched", agentIds: ["a1", "a2"] }]);
    for (const d of first) log.add(C, d);
    expect(log.rec!.state).toBe("RUNNING");
    expect(log.rec!.targets.a1!.state).toBe("DISPATCHED");
    expect(log.rec!.targets.a2!.state).toBe("DISPATCHED");
    log.add("a1", { type: "target.started", agentId: "a1" }).add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    // One free slot: the single-target event.
    expect(plan(log.rec!, ctx(0))).toEqual([{ type: "target.dispatched", agentId: "a3" }]);
  });

  it("strategy.soak: a target that succeeded keeps its slot for the soak, then the next target takes it; the last one's soak does not delay the verdict", () => {
    const soaked: DeploymentSpec = { ...spec, targets: ["a1", "a2"], strategy: { ...spec.strategy, maxConcurrency: 1, soakMs: 10_000 } };
    const log = new Log().add(C, { type: "deployment.created", spec: soaked });
    for (const d of plan(log.rec!, ctx(0))) log.add(C, d);
    log.add("a1", { type: "target.started", agentId: "a1" }, 100).add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 }, 1000);
    // Soaking until 11,000: nothing to do (no timeout either).
    expect(plan(log.rec!, ctx(1000))).toEqual([]);
    expect(plan(log.rec!, ctx(10_999))).toEqual([]);
    expect(plan(log.rec!, ctx(11_000))).toEqual([{ type: "target.dispatched", agentId: "a2" }]);
    log.add(C, { type: "target.dispatched", agentId: "a2" }, 11_000);
    log.add("a2", { type: "target.started", agentId: "a2" }, 11_100).add("a2", { type: "target.result", agentId: "a2", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 }, 12_000);
    expect(plan(log.rec!, ctx(12_001))).toEqual([expect.objectContaining({ type: "deployment.finished", state: "SUCCEEDED" })]);
    // A failed target holds no slot: only a success is soaked.
    const failing = new Log().add(C, { type: "deployment.created", spec: { ...soaked, strategy: { ...soaked.strategy, maxFailures: 1 } } });
    for (const d of plan(failing.rec!, ctx(0))) failing.add(C, d);
    failing.add("a1", { type: "target.started", agentId: "a1" }, 100).add("a1", { type: "target.result", agentId: "a1", outcome: "FAILED", message: "x", exitCode: 1, durationMs: 1 }, 1000);
    expect(plan(failing.rec!, ctx(1001))).toEqual([{ type: "target.dispatched", agentId: "a2" }]);
  });

  it("a created event that dispatched its first targets folds as created then dispatched, at its own time; an older coordinator's dispatch of the same targets has no effect", () => {
    const created = makeEvent("d-1", { type: "deployment.created", spec, dispatched: ["a1", "a2"] });
    const own = { ...created, time: new Date(500).toISOString() };
    const log = new Log();
    // Stored later (the stream's time, 900) than the event says (500): both times of the fold are the event's.
    log.events.push({ seq: ++log.seq, time: new Date(900).toISOString(), source: C, event: own });
    log.rec = foldEvent(undefined, log.events[0]!).record;
    expect(log.rec!.state).toBe("RUNNING");
    expect([log.rec!.targets.a1!.state, log.rec!.targets.a2!.state, log.rec!.targets.a3!.state]).toEqual(["DISPATCHED", "DISPATCHED", "PENDING"]);
    expect(log.rec!.targets.a1!.dispatchedAt).toBe(own.time);
    expect(log.rec!.createdAt).toBe(own.time);
    // The reconciler's first pass: nothing to dispatch until a slot frees.
    expect(plan(log.rec!, ctx(600))).toEqual([]);
    log.add(C, { type: "targets.dispatched", agentIds: ["a1", "a2"] });
    expect(log.lastIgnored).toMatch(/a1: target is DISPATCHED/);
    expect(foldAll(log.events)).toEqual(log.rec);
    // Parsed back from its bytes as written; a repeated target is refused, naming the field.
    expect(parseEvent(encode(own))).toEqual(own);
    expect(() => parseEvent(encode({ ...own, dispatched: ["a1", "a1"] }))).toThrow(/event.dispatched: must not repeat an agent/);
  });

  it("a first dispatch that dispatches nothing leaves the deployment PENDING; an explicit deployment.started (older coordinators) still starts it", () => {
    const log = new Log().add(C, { type: "deployment.created", spec }).add(C, { type: "target.dispatched", agentId: "nobody" });
    expect(log.rec!.state).toBe("PENDING");
    expect(log.lastIgnored).toContain("not a target");
    log.add(C, { type: "deployment.started" }).add(C, { type: "target.dispatched", agentId: "a1" });
    expect(log.rec!.state).toBe("RUNNING");
    expect(log.rec!.targets.a1!.state).toBe("DISPATCHED");
  });

  it("a deployment cancelled before it started: started, then finished CANCELLED, in one pass; nothing dispatched", () => {
    const log = new Log().add(C, { type: "deployment.created", spec }).add(C, { type: "deployment.cancel_requested", reason: "no" });
    const first = plan(log.rec!, ctx(0));
    expect(first.map((d) => d.type)).toEqual(["deployment.started", "deployment.finished"]);
    for (const d of first) log.add(C, d);
    expect(log.rec!.state).toBe("CANCELLED");
    expect(Object.values(log.rec!.targets).every((t) => t.state === "CANCELLED")).toBe(true);
  });

  it("splits a dispatch of more than MAX_DISPATCH_BATCH targets into several events", () => {
    const many = Array.from({ length: MAX_DISPATCH_BATCH + 5 }, (_, i) => `t${i}`);
    const log = new Log()
      .add(C, { type: "deployment.created", spec: { ...spec, targets: many, strategy: { ...spec.strategy, maxConcurrency: many.length } } })
      .add(C, { type: "deployment.started" });
    const decided = plan(log.rec!, ctx(0));
    expect(decided.map((d) => (d.type === "targets.dispatched" ? d.agentIds.length : 0))).toEqual([MAX_DISPATCH_BATCH, 5]);
    for (const d of decided) log.add(C, d);
    expect(Object.values(log.rec!.targets).every((t) => t.state === "DISPATCHED")).toBe(true);
    expect(foldAll(log.events)).toEqual(log.rec);
  });

  it("a batch dispatch is checked per target: no effect only when no target was PENDING", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" });
    log.add(C, { type: "targets.dispatched", agentIds: ["a1", "a2"] });
    expect(log.lastIgnored).toBeUndefined();
    expect(log.rec!.targets.a2!.state).toBe("DISPATCHED");
    log.add(C, { type: "targets.dispatched", agentIds: ["a1", "nobody"] });
    expect(log.lastIgnored).toMatch(/a1: target is DISPATCHED; nobody: nobody is not a target/);
    // From an agent: refused like any decision.
    log.add("a3", { type: "targets.dispatched", agentIds: ["a3"] });
    expect(log.lastIgnored).toMatch(/may only come from a coordinator/);
    expect(log.rec!.targets.a3!.state).toBe("PENDING");
  });

  it("times out a target whose agent does not start within delivery_timeout", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" }, 0);
    expect(plan(log.rec!, ctx(500)).filter((e) => e.type === "target.timed_out")).toEqual([]);
    expect(plan(log.rec!, ctx(1500))).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a1", phase: "delivery" })]);
  });

  it("race decisions on a target's own subject are folded, and move its subject sequence; another agent's subject cannot carry them", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" }, 0).add(C, { type: "target.dispatched", agentId: "a2" }, 0);
    log.add("a1", { type: "agent.rejected_message", agentId: "a1", subject: "deploy.cmd.a1.x", error: "bad" });
    const rejectedSeq = log.rec!.lastSeq;
    expect(log.rec!.targets.a1!.subjectSeq).toBe(rejectedSeq);
    log.add("a1", { type: "target.timed_out", agentId: "a1", phase: "delivery", message: "late" });
    expect(log.rec!.targets.a1!.state).toBe("TIMED_OUT");
    expect(log.rec!.targets.a1!.subjectSeq).toBe(log.rec!.lastSeq);
    log.add("a1", { type: "target.cancelled", agentId: "a2", message: "forged" });
    expect(log.lastIgnored).toMatch(/from a1 about another agent/);
    expect(log.rec!.targets.a2!.state).toBe("DISPATCHED");
    // An apply timeout is never a race decision: only a coordinator's.
    log.add("a2", { type: "target.timed_out", agentId: "a2", phase: "apply", message: "forged" });
    expect(log.lastIgnored).toMatch(/may only come from a coordinator/);
  });

  it("times out an applying target whose agent stopped heartbeating", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" }, 0).add("a1", { type: "target.started", agentId: "a1" }, 0);
    const silent = { now: 4000, lastHeartbeat: () => 500, agentLiveMs: 3000, applyTimeoutGraceMs: 1000 };
    expect(plan(log.rec!, silent)).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a1", phase: "apply" })]);
  });

  it("a plan that reuses its memo decides exactly what a full scan decides, step by step through rollouts with timeouts, silences and canaries", () => {
    // A seeded walk: the clock moves on by 0-400 ms a step; agents start,
    // finish, fail, heartbeat or go silent at random; events are folded at
    // the step's time, as the stream would store them.
    let seed = 20261206;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let compared = 0;
    let timedOut = 0;
    for (let run = 0; run < 20; run++) {
      const targets = Array.from({ length: 40 }, (_, i) => `t${i}`);
      const strategy = { maxConcurrency: 1 + (run % 7), maxFailures: 40, deliveryTimeoutMs: 1000, applyTimeoutMs: 2500, ...(run % 4 === 3 ? { canary: 3, canarySoakMs: 500 } : {}) };
      const log = new Log().add(C, { type: "deployment.created", spec: { ...spec, targets, strategy } }, 0);
      const heartbeats = new Map<string, number>();
      const memo = {};
      let now = 0;
      for (let step = 0; step < 400 && !["SUCCEEDED", "FAILED", "CANCELLED"].includes(log.rec!.state); step++) {
        now += Math.floor(rnd() * 400);
        const at = { now, lastHeartbeat: (a: string) => heartbeats.get(a), agentLiveMs: 1500, applyTimeoutGraceMs: 200 };
        const withMemo = plan(log.rec!, { ...at, memo });
        expect(withMemo).toEqual(plan(log.rec!, at));
        compared++;
        timedOut += withMemo.filter((d) => d.type === "target.timed_out").length;
        for (const d of withMemo) log.add(C, d, now);
        for (const id of targets) {
          const t = log.rec!.targets[id]!;
          const r = rnd();
          if (t.state === "DISPATCHED" && r < 0.3) log.add(id, { type: "target.started", agentId: id }, now);
          else if (t.state === "APPLYING" && r < 0.2) {
            const outcome = rnd() < 0.8 ? "SUCCEEDED" : "FAILED";
            log.add(id, { type: "target.result", agentId: id, outcome, message: "", exitCode: outcome === "SUCCEEDED" ? 0 : 1, durationMs: 1 }, now);
          } else if (t.state === "APPLYING" && r < 0.6) heartbeats.set(id, now);
        }
      }
    }
    expect(compared).toBeGreaterThan(1000);
    // The walk went through timeouts, not only around them.
    expect(timedOut).toBeGreaterThan(10);
  });

  it("a memo's skip of the timeout scan lasts at most a second, and none when the clock reads earlier than at its scan", () => {
    // One at a time: the second dispatch below is an older coordinator's.
    const oneAtATime = (): Log =>
      new Log()
        .add(C, { type: "deployment.created", spec: { ...spec, strategy: { ...spec.strategy, maxConcurrency: 1 } } })
        .add(C, { type: "deployment.started" })
        .add(C, { type: "target.dispatched", agentId: "a1" }, 0);
    const log = oneAtATime()
      .add("a1", { type: "target.started", agentId: "a1" }, 0)
      .add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 }, 0);
    const memo = {};
    // Nothing in flight at this scan: no timeout can be due before 1100.
    expect(plan(log.rec!, { ...ctx(100), memo })).toEqual([{ type: "target.dispatched", agentId: "a2" }]);
    // a2's dispatch (an older coordinator's) was stored at 50, before that
    // scan, and is folded only now: its deadline (1050) is seen late, at
    // most a second after the scan, as a sweep would.
    log.add(C, { type: "target.dispatched", agentId: "a2" }, 50);
    expect(plan(log.rec!, ctx(1060))).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a2" })]);
    expect(plan(log.rec!, { ...ctx(1060), memo })).toEqual([]);
    expect(plan(log.rec!, { ...ctx(1100), memo })).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a2" })]);
    // A time that cannot be read never times out, and does not stop the others' timeouts.
    const odd = oneAtATime().add(C, { type: "target.dispatched", agentId: "a2" }, 500);
    odd.rec!.targets.a1!.dispatchedAt = "not a time";
    const memo3 = {};
    expect(plan(odd.rec!, { ...ctx(600), memo: memo3 })).toEqual([]);
    expect(plan(odd.rec!, { ...ctx(1501), memo: memo3 })).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a2" })]);
    // A clock stepped back scans again at once.
    const back = oneAtATime();
    const memo2 = {};
    expect(plan(back.rec!, { ...ctx(900), memo: memo2 })).toEqual([]);
    back.add(C, { type: "target.dispatched", agentId: "a2" }, -2000);
    expect(plan(back.rec!, { ...ctx(500), memo: memo2 })).toEqual([expect.objectContaining({ type: "target.timed_out", agentId: "a2" })]);
  });

  it("halts after more than max_failures failures and finishes FAILED when in-flight targets report", () => {
    const log = running()
      .add(C, { type: "target.dispatched", agentId: "a1" })
      .add(C, { type: "target.dispatched", agentId: "a2" })
      .add("a1", { type: "target.started", agentId: "a1" })
      .add("a1", { type: "target.result", agentId: "a1", outcome: "FAILED", message: "exit code 3", exitCode: 3, durationMs: 1 });
    expect(plan(log.rec!, ctx(0))).toEqual([expect.objectContaining({ type: "deployment.halted" })]);
    log.add(C, { type: "deployment.halted", message: "stop" });
    expect(log.rec!.targets.a3!.state).toBe("SKIPPED");
    expect(plan(log.rec!, ctx(0))).toEqual([]); // a2 still in flight
    log.add("a2", { type: "target.started", agentId: "a2" }).add("a2", { type: "target.result", agentId: "a2", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    expect(plan(log.rec!, ctx(0))).toEqual([expect.objectContaining({ type: "deployment.finished", state: "FAILED" })]);
  });
});

describe("the verdict (plan.ts finishOf): max_failures decides whether the rollout goes on, never whether it succeeded", () => {
  /** A log for `targets`, each run to `outcome` in turn with max_failures `maxFailures` and one target at a time. */
  function rollout(outcomes: Record<string, "SUCCEEDED" | "FAILED" | "TIMED_OUT">, maxFailures: number): Log {
    const s: DeploymentSpec = { ...spec, targets: Object.keys(outcomes), strategy: { ...spec.strategy, maxConcurrency: 1, maxFailures } };
    const log = new Log().add(C, { type: "deployment.created", spec: s });
    // Decide, fold, decide again, as the reconciler does, until the deployment is finished.
    for (let i = 0; i < 50 && log.rec!.state !== "SUCCEEDED" && log.rec!.state !== "FAILED"; i++) {
      const decided = plan(log.rec!, ctx(0));
      if (decided.length === 0) {
        // An agent's turn: run the one dispatched target to its outcome.
        const [agentId] = Object.entries(log.rec!.targets).find(([, t]) => t.state === "DISPATCHED")!;
        const outcome = outcomes[agentId]!;
        if (outcome === "TIMED_OUT") log.add(C, { type: "target.timed_out", agentId, phase: "delivery", message: "late" });
        else log.add(agentId, { type: "target.started", agentId }).add(agentId, { type: "target.result", agentId, outcome, message: "", exitCode: outcome === "FAILED" ? 3 : 0, durationMs: 1 });
        continue;
      }
      for (const body of decided) log.add(C, body);
    }
    return log;
  }

  it("every target succeeded: SUCCEEDED", () => {
    const rec = rollout({ a1: "SUCCEEDED", a2: "SUCCEEDED", a3: "SUCCEEDED" }, 0).rec!;
    expect([rec.state, rec.message]).toEqual(["SUCCEEDED", "3 of 3 target(s) succeeded"]);
  });

  it("failures within max_failures: every target ran, and the deployment is FAILED, saying the rollout went on", () => {
    const rec = rollout({ a1: "FAILED", a2: "SUCCEEDED", a3: "SUCCEEDED" }, 1).rec!;
    expect([rec.state, rec.message]).toEqual(["FAILED", "2 of 3 target(s) succeeded, 1 failed (rollout continued: within max_failures 1)"]);
    expect(rec.halted).toBe(false);
  });

  it("two targets, both failing, max_failures 2: FAILED, not SUCCEEDED '0 of 2'", () => {
    const rec = rollout({ a1: "FAILED", a2: "FAILED" }, 2).rec!;
    expect([rec.state, rec.message]).toEqual(["FAILED", "0 of 2 target(s) succeeded, 2 failed (rollout continued: within max_failures 2)"]);
  });

  it("a timeout is a failure, named as such", () => {
    const rec = rollout({ a1: "SUCCEEDED", a2: "TIMED_OUT", a3: "SUCCEEDED" }, 1).rec!;
    expect([rec.state, rec.message]).toEqual(["FAILED", "2 of 3 target(s) succeeded, 1 timed out (rollout continued: within max_failures 1)"]);
  });

  it("more failures than max_failures: halted, the rest SKIPPED, FAILED saying so", () => {
    const rec = rollout({ a1: "SUCCEEDED", a2: "FAILED", a3: "SUCCEEDED" }, 0).rec!;
    expect(rec.targets.a3!.state).toBe("SKIPPED");
    expect([rec.state, rec.message]).toEqual(["FAILED", "1 of 3 target(s) succeeded, 1 failed, 1 skipped (rollout halted: more than max_failures 0)"]);
  });

  it("the last target failing past max_failures leaves nothing to halt: FAILED without 'halted'", () => {
    const rec = rollout({ a1: "SUCCEEDED", a2: "SUCCEEDED", a3: "FAILED" }, 0).rec!;
    expect([rec.state, rec.message]).toEqual(["FAILED", "2 of 3 target(s) succeeded, 1 failed (more than max_failures 0)"]);
  });

  it("a cancel requested still ends CANCELLED, failures or not", () => {
    const log = running().add(C, { type: "target.dispatched", agentId: "a1" }).add("a1", { type: "target.started", agentId: "a1" });
    log.add(C, { type: "deployment.cancel_requested", reason: "stop" });
    log.add("a1", { type: "target.result", agentId: "a1", outcome: "FAILED", message: "", exitCode: 3, durationMs: 1 });
    expect(plan(log.rec!, ctx(0))).toEqual([{ type: "deployment.finished", state: "CANCELLED", message: "cancelled: stop" }]);
  });
});

describe("target ids, counts and the end of a rollout", () => {
  it("lists a record's targets once per targets object and counts them as they move, to the finish", () => {
    const log = running();
    const ids = targetIds(log.rec!);
    expect(ids).toEqual(["a1", "a2", "a3"]);
    // The same list while the fold moves the targets on (their keys never change).
    log.add(C, { type: "targets.dispatched", agentIds: ["a1", "a2"] }).add("a1", { type: "target.started", agentId: "a1" });
    expect(targetIds(log.rec!)).toBe(ids);
    expect(countTargets(log.rec!)).toMatchObject({ PENDING: 1, DISPATCHED: 1, APPLYING: 1 });
    const ok = (a: string): EventBody => ({ type: "target.result", agentId: a, outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
    log.add("a1", ok("a1")).add("a2", { type: "target.started", agentId: "a2" }).add("a2", ok("a2"));
    expect(plan(log.rec!, ctx(0))).toEqual([{ type: "target.dispatched", agentId: "a3" }]);
    log.add(C, { type: "target.dispatched", agentId: "a3" }).add("a3", { type: "target.started", agentId: "a3" });
    expect(plan(log.rec!, ctx(0))).toEqual([]);
    log.add("a3", ok("a3"));
    expect(countTargets(log.rec!)).toMatchObject({ PENDING: 0, DISPATCHED: 0, APPLYING: 0, SUCCEEDED: 3 });
    expect(plan(log.rec!, ctx(0))).toMatchObject([{ type: "deployment.finished", state: "SUCCEEDED" }]);
    // A fold from scratch makes a new targets object: its own list, the same ids.
    const again = foldAll(log.events)!;
    expect(targetIds(again)).not.toBe(ids);
    expect(targetIds(again)).toEqual(ids);
  });

  it("keeps its counts through every kind of move (results, declines, timeouts, a halt, a cancel), equal to a count of the targets at every step", () => {
    const scan = (rec: DeploymentRecord): { counts: Record<string, number>; dispatched: number } => {
      const counts: Record<string, number> = { PENDING: 0, DISPATCHED: 0, APPLYING: 0, SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0, CANCELLED: 0, SKIPPED: 0 };
      for (const t of Object.values(rec.targets)) counts[t.state]!++;
      return { counts, dispatched: Object.values(rec.targets).filter((t) => t.dispatchedAt !== undefined).length };
    };
    const targets = Array.from({ length: 12 }, (_, i) => `t${i}`);
    for (const end of ["halted", "cancelled"] as const) {
      const log = new Log().add(C, { type: "deployment.created", spec: { ...spec, targets, strategy: { ...spec.strategy, maxConcurrency: 12, maxFailures: 1 } } }, 0);
      // Counted first, so every move after this keeps the counts.
      expect(countTargets(log.rec!)).toEqual(scan(log.rec!).counts);
      const steps: [string, EventBody][] = [
        [C, { type: "targets.dispatched", agentIds: targets.slice(0, 8) }],
        ["t0", { type: "target.started", agentId: "t0" }],
        ["t0", { type: "target.result", agentId: "t0", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 }],
        ["t1", { type: "target.declined", agentId: "t1", reason: "not here" }],
        [C, { type: "target.timed_out", agentId: "t2", phase: "delivery", message: "late" }],
        ["t3", { type: "target.started", agentId: "t3" }],
        [C, { type: "target.timed_out", agentId: "t3", phase: "apply", message: "silent" }],
        ["t4", { type: "target.started", agentId: "t4" }],
        // Repeated and late: changes nothing, counted as nothing.
        ["t0", { type: "target.result", agentId: "t0", outcome: "FAILED", message: "", exitCode: 1, durationMs: 1 }],
        end === "halted" ? [C, { type: "deployment.halted", message: "too many failures" }] : [C, { type: "deployment.cancel_requested", reason: "stop" }],
        [C, { type: "target.cancelled", agentId: "t5", message: "cancelled" }],
        ["t4", { type: "target.result", agentId: "t4", outcome: "FAILED", message: "", exitCode: 1, durationMs: 1 }],
      ];
      for (const [source, body] of steps) {
        log.add(source, body, 0);
        expect(countTargets(log.rec!), `${end}: after ${body.type}`).toEqual(scan(log.rec!).counts);
        expect(dispatchedCount(log.rec!), `${end}: after ${body.type}`).toBe(scan(log.rec!).dispatched);
      }
      expect(countTargets(log.rec!)[end === "halted" ? "SKIPPED" : "CANCELLED"]).toBeGreaterThanOrEqual(4);
      // The copy handed out is the caller's.
      countTargets(log.rec!).PENDING = 99;
      expect(countTargets(log.rec!)).toEqual(scan(log.rec!).counts);
    }
  });

  it("in the test suite (DEPLOY_VERIFY_COUNTS=1), a target's state changed outside the fold fails the next count rather than a plan", () => {
    expect(process.env["DEPLOY_VERIFY_COUNTS"]).toBe("1");
    const log = running();
    countTargets(log.rec!);
    log.rec!.targets.a1!.state = "SUCCEEDED";
    expect(() => countTargets(log.rec!)).toThrow(/changed outside moveTarget/);
  });
});
