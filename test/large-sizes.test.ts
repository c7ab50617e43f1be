// Every message the system writes for a deployment of 100,000 targets fits
// the server's limits (issue 16, part 4; DESIGN.md invariant 4), checked on
// the functions that make them, without a server: the created event and its
// target chunks, the dispatch batches of a max_concurrency of 100,000, the
// cancel and halt of every target, the verdict, and the projection's shards.
// The deployment is the worst case the API accepts: 100,000 targets with
// 64-character ids (the longest), all but one offline at creation.
import { describe, expect, it } from "vitest";
import {
  MAX_TARGETS,
  assembleProjection,
  ResourceExhaustedError,
  encode,
  eventBudget,
  foldEvent,
  kvValueBudget,
  makeEvent,
  shardsOf,
  projectionSummaryOf,
  splitSpec,
  type DeploymentRecord,
  type DeploymentSpec,
  type EventBody,
  type HeldChunks,
} from "../services/shared/src/index.js";
import { plan } from "../services/coordinator/src/rollout/plan.js";
import { checkCreationFits } from "../services/coordinator/src/createDeployment.js";

const id = "d-0mx5mrff6-188a5428";
const agent = (i: number): string => `${String(i).padStart(8, "0")}-${"x".repeat(55)}`; // 64 characters
const targets = Array.from({ length: MAX_TARGETS }, (_, i) => agent(i));
const heartbeat = new Date().toISOString();

function bigSpec(): DeploymentSpec {
  const offlineTargets: Record<string, string> = {};
  for (const t of targets.slice(1)) offlineTargets[t] = heartbeat;
  return {
    id,
    requestId: "r".repeat(256),
    requestHash: "h".repeat(64),
    app: "a".repeat(64),
    environment: "e".repeat(64),
    changeset: { version: "v".repeat(128), artifact: { name: "n".repeat(128), digest: `sha256:${"0".repeat(64)}`, size: 1 } },
    strategy: { maxConcurrency: MAX_TARGETS, maxFailures: MAX_TARGETS, deliveryTimeoutMs: 60_000, applyTimeoutMs: 60_000, canary: 50_000, canaryPercent: 50 },
    targets,
    requestedBy: "i".repeat(256),
    requestedByVia: "token",
    requestedByNote: "n".repeat(256),
    selector: "s".repeat(1024),
    selection: "selector",
    offlineTargets,
    convergeOffline: true,
  };
}

const budget = eventBudget(undefined); // a server with the default max_payload (1 MiB): 255 KiB, DEPLOY_EVENTS' max_msg_size less the envelope
const eventBytes = (body: EventBody): number => encode(makeEvent(id, body)).length;

/** The record a coordinator folds from the events CreateDeployment writes for `spec`, and the largest of those events. */
function created(spec: DeploymentSpec): { record: DeploymentRecord; largest: number; events: number } {
  const split = splitSpec(spec, budget);
  const held: HeldChunks = new Map();
  let largest = 0;
  let seq = 0;
  const seqs: number[] = [];
  for (const c of split.chunks) {
    largest = Math.max(largest, eventBytes(c));
    foldEvent(undefined, { seq: ++seq, time: heartbeat, source: "targets", event: makeEvent(id, c) }, held);
    seqs.push(seq);
  }
  const body: EventBody = { type: "deployment.created", spec: { ...split.created, ...(seqs.length > 0 ? { targetChunks: seqs } : {}) } };
  largest = Math.max(largest, eventBytes(body));
  const record = foldEvent(undefined, { seq: ++seq, time: heartbeat, source: "coordinator", event: makeEvent(id, body) }, held).record!;
  return { record, largest, events: seq };
}

describe(`a deployment of ${MAX_TARGETS} targets with the longest ids`, () => {
  it("is created in events that each fit the budget, and folds back to the whole spec", () => {
    const spec = bigSpec();
    expect(() => checkCreationFits({ nc: undefined as never }, spec)).not.toThrow();
    const { record, largest, events } = created(spec);
    console.log(`[sizes] created: ${events} events (${events - 1} target chunks), largest ${largest} bytes of ${budget}`);
    expect(largest).toBeLessThanOrEqual(budget);
    expect(record.spec.targets).toEqual(spec.targets);
    expect(record.spec.offlineTargets).toEqual(spec.offlineTargets);
    expect(Object.keys(record.targets).length).toBe(MAX_TARGETS);
    expect(record.targets[agent(1)]!.state).toBe("SKIPPED");
    expect(record.targets[agent(0)]!.state).toBe("PENDING");
  });

  it("with only_outdated, all but one target already current: the chunks, the fold, the verdict and the shards keep them", () => {
    const spec = bigSpec();
    const release = `${"v".repeat(128)}-188a5428`; // the longest release name
    spec.currentTargets = Object.fromEntries(targets.slice(1).map((t) => [t, release]));
    delete spec.offlineTargets;
    delete spec.convergeOffline;
    spec.strategy = { ...spec.strategy, canary: 0, onlyOutdated: true };
    expect(() => checkCreationFits({ nc: undefined as never }, spec)).not.toThrow();
    const { record, largest, events } = created(spec);
    console.log(`[sizes] created with ${MAX_TARGETS - 1} current targets: ${events} events, largest ${largest} bytes of ${budget}`);
    expect(largest).toBeLessThanOrEqual(budget);
    expect(record.spec.currentTargets).toEqual(spec.currentTargets);
    expect(record.targets[agent(1)]).toMatchObject({ state: "SKIPPED", message: `already on ${release}` });
    expect(record.targets[agent(0)]!.state).toBe("PENDING");
    // The one outdated target succeeds: the verdict counts the others as done.
    Object.assign(record.targets[agent(0)]!, { state: "SUCCEEDED" });
    record.state = "RUNNING";
    const ctx = { now: Date.now(), lastHeartbeat: () => Date.now(), agentLiveMs: 15_000, applyTimeoutGraceMs: 2000, eventBudgetBytes: budget };
    expect(plan(record, ctx)).toEqual([{ type: "deployment.finished", state: "SUCCEEDED", message: `1 of ${MAX_TARGETS} target(s) succeeded, ${MAX_TARGETS - 1} already on ${spec.changeset.version}` }]);
    const shards = shardsOf(record);
    const summary = projectionSummaryOf(record, shards.map(() => 1));
    expect(Math.max(...shards.map((x) => encode(x).length), encode(summary).length)).toBeLessThanOrEqual(kvValueBudget(undefined));
    const back = assembleProjection(JSON.parse(JSON.stringify(summary)) as typeof summary, JSON.parse(JSON.stringify(shards)) as unknown[]);
    expect(typeof back).not.toBe("string");
    expect((back as DeploymentRecord).spec.currentTargets).toEqual(spec.currentTargets);
  });

  it("every decision the rollout writes fits: dispatches of 100,000 at once, a cancel, a halt, the verdict", () => {
    const spec = bigSpec();
    delete spec.offlineTargets; // every target live: the most dispatched at once
    spec.strategy = { ...spec.strategy, canary: 0 };
    const { record } = created(spec);
    record.state = "RUNNING";
    const ctx = { now: Date.now(), lastHeartbeat: () => Date.now(), agentLiveMs: 15_000, applyTimeoutGraceMs: 2000, eventBudgetBytes: budget };
    const dispatches = plan(record, ctx);
    expect(dispatches.reduce((n, d) => n + (d.type === "targets.dispatched" ? d.agentIds.length : 0), 0)).toBe(MAX_TARGETS);
    let largest = Math.max(...dispatches.map(eventBytes));
    // Fold them, then cancel: one target.cancelled per dispatched target.
    let seq = record.lastSeq;
    for (const d of dispatches) foldEvent(record, { seq: ++seq, time: heartbeat, source: "coordinator", event: makeEvent(id, d) });
    foldEvent(record, { seq: ++seq, time: heartbeat, source: "coordinator", event: makeEvent(id, { type: "deployment.cancel_requested", reason: "r".repeat(4096), by: "b" }) });
    const cancels = plan(record, ctx);
    expect(cancels.length).toBe(MAX_TARGETS);
    largest = Math.max(largest, ...cancels.map(eventBytes));
    for (const d of cancels) foldEvent(record, { seq: ++seq, time: heartbeat, source: (d as { agentId: string }).agentId, event: makeEvent(id, d) });
    const finish = plan(record, ctx);
    expect(finish).toHaveLength(1);
    largest = Math.max(largest, eventBytes(finish[0]!));
    console.log(`[sizes] rollout decisions: largest ${largest} bytes of ${budget}`);
    expect(largest).toBeLessThanOrEqual(budget);
  });

  it("its projection is stored in shards that each fit a KV value, and a summary", () => {
    const { record } = created(bigSpec());
    // Every target finished with a message of 200 characters: a typical result.
    for (const t of Object.values(record.targets)) Object.assign(t, { state: "FAILED", message: "m".repeat(200), dispatchedAt: heartbeat, startedAt: heartbeat, finishedAt: heartbeat, subjectSeq: 123456789, startedSeq: 123456788 });
    const shards = shardsOf(record).map((s) => encode(s).length);
    const summary = encode(projectionSummaryOf(record, shards.map(() => 1_000_000))).length;
    console.log(`[sizes] projection: ${shards.length} shards, largest ${Math.max(...shards)} bytes; summary ${summary} bytes; of ${kvValueBudget(undefined)}`);
    expect(Math.max(...shards, summary)).toBeLessThanOrEqual(kvValueBudget(undefined));
  });

  it("CreateDeployment refuses, before writing anything, what still cannot fit: RESOURCE_EXHAUSTED naming the limit", () => {
    // A server whose max_payload leaves 476 bytes an event: the created event, even without its targets, does not fit.
    const small = { nc: { info: { max_payload: 1500 } } as never };
    const refusal = (spec: DeploymentSpec): unknown => {
      try {
        checkCreationFits(small, spec);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const many = refusal(bigSpec());
    expect(many).toBeInstanceOf(ResourceExhaustedError);
    expect((many as Error).message).toMatch(
      /^targets: the deployment of 100000 target\(s\) cannot be recorded: its targets take \d+ deployment\.targets events, over the 1000 a deployment may have \(DEPLOY_EVENTS max_msg_size 262144, server max_payload 1500\)$/,
    );
    const one = refusal({ ...bigSpec(), targets: [agent(0)], offlineTargets: {} });
    expect((one as Error).message).toMatch(
      /^targets: the deployment of 1 target\(s\) cannot be recorded: its deployment\.created event would be \d+ bytes \(without its target list\), over the 476 bytes an event may take \(DEPLOY_EVENTS max_msg_size 262144, server max_payload 1500\)$/,
    );
    expect(() => checkCreationFits({ nc: undefined as never }, { ...bigSpec(), targets: [...targets, "one-more"] })).toThrow(/over the 100000 a deployment may have/);
  });

  it("a creator that died half-way leaves chunks no created event lists: the fold ignores them, and a chunk after the created event", () => {
    const spec = bigSpec();
    const split = splitSpec(spec, budget);
    const held: HeldChunks = new Map();
    const at = (seq: number, source: string, body: EventBody): { seq: number; time: string; source: string; event: ReturnType<typeof makeEvent> } => ({ seq, time: heartbeat, source, event: makeEvent(id, body) });
    // Attempt 1 wrote two chunks and died; attempt 2 wrote them all, then the created event.
    foldEvent(undefined, at(1, "targets", { type: "deployment.targets", agentIds: ["orphan-1"] }), held);
    foldEvent(undefined, at(2, "targets", split.chunks[0]!), held);
    const seqs = split.chunks.map((c, i) => {
      foldEvent(undefined, at(10 + i, "targets", c), held);
      return 10 + i;
    });
    // A created event naming a chunk that was not read is no deployment.
    const missing = foldEvent(undefined, at(500, "coordinator", { type: "deployment.created", spec: { ...split.created, targetChunks: [...seqs.slice(1), 499] } }), new Map(held));
    expect(missing.record).toBeUndefined();
    expect(missing.ignored).toMatch(/target chunk at sequence 499 was not read/);
    const { record } = foldEvent(undefined, at(501, "coordinator", { type: "deployment.created", spec: { ...split.created, targetChunks: seqs } }), held);
    expect(record!.spec.targets).toEqual(spec.targets);
    expect(record!.targets["orphan-1"]).toBeUndefined();
    // A chunk written after (a slow creator that lost): changes nothing but the sequence bookkeeping.
    const late = foldEvent(record, at(502, "targets", { type: "deployment.targets", agentIds: ["late-1"] }));
    expect(late.ignored).toMatch(/not part of it/);
    expect(record!.targets["late-1"]).toBeUndefined();
    expect(record!.spec.targets).toHaveLength(MAX_TARGETS);
  });
});
