// Desired releases and convergence as pure functions: offline targets in the
// fold and the verdict, what a SUCCEEDED deployment makes the desired
// release, and an agent against it (status, whether it needs converging).
// No NATS needed; test/convergence.test.ts runs the real stack.
import { describe, expect, it } from "vitest";
import {
  RELEASE_SCHEMA,
  foldEvent,
  makeEvent,
  parseDesiredRelease,
  parseAgentRecord,
  parseSpec,
  releaseName,
  type AgentRecord,
  type DeploymentRecord,
  type DeploymentSpec,
  type DesiredRelease,
  type EventBody,
} from "../services/shared/src/index.js";
import { plan } from "../services/coordinator/src/rollout/plan.js";
import { desiredReleaseOf } from "../services/coordinator/src/releases/recordDesiredRelease.js";
import { covers, missed, needsConvergence, onRelease, releaseStatus } from "../services/coordinator/src/releases/agentReleases.js";

const base: DeploymentSpec = {
  id: "d-0mwxzpgab-3e1e5ad5",
  requestId: "r-1",
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v2" },
  strategy: { maxConcurrency: 3, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
  targets: ["a1", "a2", "a3"],
  requestedBy: "",
  selection: "all",
};

const ctx = { now: 0, lastHeartbeat: () => 0, agentLiveMs: 3000, applyTimeoutGraceMs: 1000 };

/** Runs `spec` to its end, every dispatched target ending with `outcome[agent]` (default SUCCEEDED). */
function run(spec: DeploymentSpec, outcome: Record<string, "SUCCEEDED" | "FAILED"> = {}): DeploymentRecord {
  let seq = 0;
  let rec: DeploymentRecord | undefined;
  const add = (source: string, body: EventBody): void => {
    rec = foldEvent(rec, { seq: ++seq, time: new Date(1000 * seq).toISOString(), source, event: makeEvent(spec.id, body) }).record;
  };
  add("coordinator", { type: "deployment.created", spec });
  for (let i = 0; i < 50 && !["SUCCEEDED", "FAILED", "CANCELLED"].includes(rec!.state); i++) {
    const decided = plan(rec!, ctx);
    if (decided.length > 0) {
      for (const d of decided) add("coordinator", d);
      continue;
    }
    for (const [a, t] of Object.entries(rec!.targets)) {
      if (t.state !== "DISPATCHED") continue;
      const o = outcome[a] ?? "SUCCEEDED";
      add(a, { type: "target.started", agentId: a });
      add(a, { type: "target.result", agentId: a, outcome: o, message: "", exitCode: o === "FAILED" ? 3 : 0, durationMs: 1 });
    }
  }
  return rec!;
}

const offlineSpec = (convergeOffline: boolean): DeploymentSpec => ({ ...base, offlineTargets: { a3: "2026-01-02T03:04:05.000Z" }, convergeOffline });

describe("targets offline at creation", () => {
  it("are targets from the start, SKIPPED with their last heartbeat, never dispatched", () => {
    const rec = run(offlineSpec(true));
    expect(rec.targets.a3).toMatchObject({ state: "SKIPPED", message: "offline at creation: last heartbeat 2026-01-02T03:04:05.000Z" });
    expect(rec.targets.a3!.dispatchedAt).toBeUndefined();
    expect(Object.keys(rec.targets)).toEqual(["a1", "a2", "a3"]);
  });

  it("with convergence on, a deployment whose only shortfall is offline targets SUCCEEDS and says so", () => {
    const rec = run(offlineSpec(true));
    expect([rec.state, rec.message]).toEqual(["SUCCEEDED", "2 of 3 target(s) succeeded, 1 offline (skipped; converges when back)"]);
  });

  it("with convergence off, nothing will bring them to the release: FAILED, saying why", () => {
    const rec = run(offlineSpec(false));
    expect([rec.state, rec.message]).toEqual(["FAILED", "2 of 3 target(s) succeeded, 1 offline (skipped; convergence is off in prod)"]);
  });

  it("a failed target still fails the deployment, offline targets or not", () => {
    const rec = run({ ...offlineSpec(true), strategy: { ...base.strategy, maxFailures: 1 } }, { a1: "FAILED" });
    expect([rec.state, rec.message]).toEqual(["FAILED", "1 of 3 target(s) succeeded, 1 failed, 1 offline (skipped; converges when back) (rollout continued: within max_failures 1)"]);
  });

  it("the spec field is checked: an offline target must be a target", () => {
    expect(() => parseSpec({ ...base, offlineTargets: { a9: "2026-01-02T03:04:05.000Z" } })).toThrow(/spec.offlineTargets: a9 is not one of the targets/);
    expect(parseSpec(JSON.parse(JSON.stringify(offlineSpec(true))))).toEqual(offlineSpec(true));
  });
});

describe("what a deployment makes the desired release", () => {
  it("a SUCCEEDED deployment: its id, version, artifact, release name, finish time and sequence", () => {
    const spec = { ...base, changeset: { version: "v2", artifact: { name: "web", digest: `sha256:${"a".repeat(64)}`, size: 10 } } };
    const rec = run(spec);
    const d = desiredReleaseOf(rec)!;
    expect(d).toEqual({
      schema: RELEASE_SCHEMA,
      app: "web",
      environment: "prod",
      deploymentId: spec.id,
      version: "v2",
      artifact: { name: "web", digest: `sha256:${"a".repeat(64)}` },
      release: "v2-3e1e5ad5",
      succeededAt: rec.finishedAt,
      finishedSeq: rec.finishedSeq,
      selection: "all",
    });
    expect(rec.finishedSeq).toBe(rec.lastCoordinatorSeq);
    expect(parseDesiredRelease(JSON.stringify(d))).toEqual(d);
  });

  it("nothing for a FAILED deployment, nor for a convergence deployment", () => {
    expect(desiredReleaseOf(run(base, { a2: "FAILED" }))).toBeUndefined();
    expect(desiredReleaseOf(run({ ...base, targets: ["a1"], selection: "targets", convergesTo: "d-0mwxzpaaa-00000000" }))).toBeUndefined();
  });

  it("a spec from before the selection was recorded spreads to no one", () => {
    const { selection: _, ...old } = base;
    expect(desiredReleaseOf(run(old))!.selection).toBe("targets");
  });
});

describe("an agent against the desired release", () => {
  const desired: DesiredRelease = {
    schema: RELEASE_SCHEMA,
    app: "web",
    environment: "prod",
    deploymentId: "d-0mwxzpgab-3e1e5ad5",
    version: "v2",
    release: releaseName("v2", "d-0mwxzpgab-3e1e5ad5"),
    succeededAt: "2026-01-02T03:04:05.000Z",
    finishedSeq: 40,
    selection: "all",
  };
  const agent = (releases: AgentRecord["releases"], labels: Record<string, string> = {}): AgentRecord =>
    parseAgentRecord(
      JSON.stringify({
        schema: "deploy.agent.v1",
        id: "a1",
        environment: "prod",
        apps: ["web"],
        host: "h",
        version: "0.1.0",
        labels,
        currentReleases: Object.fromEntries(Object.entries(releases ?? {}).map(([app, r]) => [app, r.release])),
        ...(releases ? { releases } : {}),
        startedAt: "2026-01-01T00:00:00.000Z",
      }),
    );
  const older = { release: "v1-00000001", deploymentId: "d-0mwxzp000-00000001", version: "v1" };
  const newer = { release: "v3-00000003", deploymentId: "d-0mwxzpzzz-00000003", version: "v3" };
  const converged = { release: "v2-00000009", deploymentId: "d-0mwxzpzzz-00000009", version: "v2" };

  it("on it: installed by that deployment, or the same version and artifact by another (a convergence)", () => {
    expect(onRelease(agent({ web: { release: desired.release, deploymentId: desired.deploymentId, version: "v2" } }), "web", desired)).toBe(true);
    expect(onRelease(agent({ web: converged }), "web", desired)).toBe(true);
    expect(onRelease(agent({ web: { ...converged, artifact: { name: "web", digest: `sha256:${"b".repeat(64)}` } } }), "web", desired)).toBe(false);
    expect(onRelease(agent({ web: older }), "web", desired)).toBe(false);
  });

  it("status: current, outdated, offline, or no desired release", () => {
    expect(releaseStatus(agent({ web: converged }), true, "web", desired)).toBe("CURRENT");
    expect(releaseStatus(agent({ web: older }), true, "web", desired)).toBe("OUTDATED");
    expect(releaseStatus(agent(undefined), true, "web", desired)).toBe("OUTDATED");
    expect(releaseStatus(agent({ web: converged }), false, "web", desired)).toBe("OFFLINE");
    expect(releaseStatus(agent({ web: older }), true, "web", undefined)).toBe("NO_DESIRED_RELEASE");
  });

  it("needs converging when it missed the release (older or none) and the release covers it; not when a later deployment put it elsewhere", () => {
    expect(needsConvergence(agent({ web: older }), "web", desired)).toBe(true);
    expect(needsConvergence(agent(undefined), "web", desired)).toBe(true);
    expect(missed(agent({ web: newer }), "web", desired)).toBe(false);
    expect(needsConvergence(agent({ web: newer }), "web", desired)).toBe(false);
    expect(needsConvergence(agent({ web: converged }), "web", desired)).toBe(false);
  });

  it("a release chosen by selector covers the agents it matches; one to an explicit list covers no one else", () => {
    const bySelector: DesiredRelease = { ...desired, selection: "selector", selector: "role=web" };
    expect(covers(bySelector, agent(undefined, { role: "web" }))).toBe(true);
    expect(covers(bySelector, agent(undefined, { role: "db" }))).toBe(false);
    expect(needsConvergence(agent({ web: older }, { role: "db" }), "web", bySelector)).toBe(false);
    expect(covers({ ...desired, selection: "targets" }, agent(undefined))).toBe(false);
  });
});
