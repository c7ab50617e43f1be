// Canary waves, promote, pause and resume, automatic revert and rollback,
// end to end (a real nats-server, a coordinator and three agents from
// dist/). No timing thresholds: waits are "until", and "nothing was
// dispatched" is read after an event that comes later in the stream.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { grpcError } from "./helpers/client.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

const stateOf = (d: DeploymentMsg, agentId: string): string => d.targets?.find((t) => t.agentId === agentId)?.state ?? "";

describe("canary, promote, pause, auto_revert and rollback", () => {
  let stack: Stack;
  let client: DeployClient;

  beforeAll(async () => {
    stack = await Stack.start();
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const deploy = (version: string, strategy: object, more: object = {}): Promise<DeploymentMsg> =>
    client.create({ requestId: rid(version), app: "web", environment: "prod", changeset: { version }, strategy: { maxConcurrency: 3, ...strategy }, ...more });

  let v1 = "";

  it("a canary wave waits for a promote, then the rollout goes on to every target", async () => {
    const d = await deploy("v1", { canary: 1 });
    expect(d.strategy?.canary).toBe(1);
    expect(d.canaryTargets).toEqual(["a1"]);
    const waiting = await until("the canary wave done", async () => {
      const g = await client.get(d.id!);
      return g.awaitingPromotion ? g : undefined;
    });
    expect(waiting.state).toBe("DEPLOYMENT_STATE_RUNNING");
    expect(stateOf(waiting, "a1")).toBe("TARGET_STATE_SUCCEEDED");
    expect(stateOf(waiting, "a2")).toBe("TARGET_STATE_PENDING");
    expect(stateOf(waiting, "a3")).toBe("TARGET_STATE_PENDING");
    expect(waiting.message).toMatch(/^canary wave of 1 succeeded; waiting for a promote \(deployctl promote d-/);
    expect(waiting.promoteAt).toBeFalsy();
    expect(await stack.startsOf("a2", d.id!)).toBe(0);

    const promoted = await client.promote(d.id!);
    expect(promoted.promotedBy).toBe("anonymous (development mode)");
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.awaitingPromotion).toBe(false);
    const events = await client.events(d.id!);
    const types = events.map((e) => e.type);
    expect(types.indexOf("deployment.canary_done")).toBeLessThan(types.indexOf("deployment.promoted"));
    expect(events.find((e) => e.type === "deployment.promoted")?.actor).toBe("anonymous (development mode)");
    // Promoting again is a no-op; promoting a deployment without a wave is refused.
    await expect(client.promote(d.id!)).resolves.toMatchObject({ state: "DEPLOYMENT_STATE_SUCCEEDED" });
    v1 = d.id!;
  });

  it("strategy.soak: each target that succeeded keeps its slot that long before the next one is dispatched", async () => {
    const d = await deploy("v-soak", { maxConcurrency: 1, soak: { seconds: 1 } });
    expect(d.strategy?.soak).toMatchObject({ seconds: "1" });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const events = await client.events(d.id!);
    const at = (type: string, agentId: string): number => {
      const e = events.find((x) => x.type === type && x.agentId === agentId);
      return Number(e?.time?.seconds ?? 0) * 1000 + Math.floor((e?.time?.nanos ?? 0) / 1e6);
    };
    // Event times are the server's, the soak measured on the coordinator's estimate of that clock (a few ms of slack): a2 dispatched the soak after a1's result, a3 after a2's.
    expect(at("target.dispatched", "a2") - at("target.result", "a1")).toBeGreaterThanOrEqual(900);
    expect(at("target.dispatched", "a3") - at("target.result", "a2")).toBeGreaterThanOrEqual(900);
    const bad = await grpcError(deploy("v-x", { soak: { seconds: String(8 * 86400) } }));
    expect(bad?.details).toMatch(/^strategy\.soak: must be at most 7 days/);
  });

  it("canary_soak promotes by itself once the wave has succeeded", async () => {
    const d = await deploy("v1b", { canaryPercent: "50%", canarySoak: { seconds: 1 } });
    // 50% of 3: ceil(1.5) = 2 canaries.
    expect(d.strategy?.canary).toBe(2);
    expect(d.canaryTargets).toEqual(["a1", "a2"]);
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.promotedBy).toBe("canary_soak");
    const types = (await client.events(d.id!)).map((e) => e.type);
    expect(types).toContain("deployment.canary_done");
  });

  it("a canary that fails halts the rollout whatever max_failures allows", async () => {
    await stack.control("a1", "fail");
    try {
      const d = await deploy("v-bad-canary", { canary: 1, maxFailures: 2 });
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(stateOf(done, "a1")).toBe("TARGET_STATE_FAILED");
      expect(stateOf(done, "a2")).toBe("TARGET_STATE_SKIPPED");
      expect(stateOf(done, "a3")).toBe("TARGET_STATE_SKIPPED");
      const halted = (await client.events(d.id!)).find((e) => e.type === "deployment.halted");
      expect(halted?.message).toBe("canary a1 failed: rollout halted before the other targets");
      expect(await stack.startsOf("a2", d.id!)).toBe(0);
      const err = await grpcError(client.promote(d.id!));
      expect(err?.code).toBe(9); // FAILED_PRECONDITION
      expect(err?.details).toMatch(/is FAILED: nothing to promote/);
    } finally {
      await stack.control("a1", "fail", false);
    }
  });

  it("pause stops dispatching (running applies finish); resume goes on", async () => {
    await stack.control("a1", { sleep: 2 });
    try {
      const d = await deploy("v-paused", { maxConcurrency: 1 });
      await until("a1 applying", async () => stateOf(await client.get(d.id!), "a1") === "TARGET_STATE_APPLYING");
      const paused = await client.pause(d.id!, "looking at graphs");
      expect(paused.paused).toBe(true);
      expect(paused.pausedBy).toBe("anonymous (development mode)");
      await client.pause(d.id!); // already paused: unchanged
      // a1's result comes after the pause in the stream: every decision made after it saw the pause.
      const after = await until("a1 done", async () => {
        const g = await client.get(d.id!);
        return stateOf(g, "a1") === "TARGET_STATE_SUCCEEDED" ? g : undefined;
      });
      await client.get(d.id!); // one more reconcile's worth of time
      const still = await client.get(d.id!);
      expect(after.state).toBe("DEPLOYMENT_STATE_RUNNING");
      expect(stateOf(still, "a2")).toBe("TARGET_STATE_PENDING");
      const resumed = await client.resume(d.id!);
      expect(resumed.paused).toBe(false);
      const done = await client.waitTerminal(d.id!);
      expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      const events = await client.events(d.id!);
      expect(events.find((e) => e.type === "deployment.paused")).toMatchObject({ actor: "anonymous (development mode)", message: "looking at graphs" });
      expect(events.filter((e) => e.type === "deployment.paused")).toHaveLength(1);
      expect(events.find((e) => e.type === "deployment.resumed")?.actor).toBe("anonymous (development mode)");
    } finally {
      await stack.control("a1", { sleep: 2 }, false);
    }
  });

  it("a deployment paused longer than max_pause is cancelled, so it still finishes", async () => {
    const d = await deploy("v-forgotten", { canary: 1, maxPause: { seconds: 1 } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(done.message).toMatch(/waiting for a promote for longer than max_pause 1s/);
    expect(stateOf(done, "a1")).toBe("TARGET_STATE_SUCCEEDED");
    expect(stateOf(done, "a2")).toBe("TARGET_STATE_CANCELLED");
  });

  it("auto_revert brings the targets a FAILED deployment changed back to the desired release, by a linked deployment", async () => {
    expect((await client.get(v1)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // The last SUCCEEDED deployment (v1b, by its soak) is the desired release: v-paused after it.
    await stack.control("a2", "fail");
    let failedId = "";
    try {
      const d = await deploy("v2", { maxFailures: 3, autoRevert: true });
      const done = await client.waitTerminal(d.id!);
      failedId = d.id!;
      expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(done.strategy?.autoRevert).toBe(true);
      expect(done.message).toMatch(/; auto_revert: bringing 3 changed target\(s\) back to v-paused \(release v-paused-/);
    } finally {
      await stack.control("a2", "fail", false);
    }
    const failed = await until("reverted_by", async () => {
      const g = await client.get(failedId);
      return g.revertedBy ? g : undefined;
    });
    const revert = await client.waitTerminal(failed.revertedBy!);
    expect(revert.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(revert.reverts).toBe(failedId);
    expect(revert.requestedBy).toBe("auto-revert");
    expect(revert.requestId).toBe(`revert.${failedId}`);
    expect(revert.changeset?.version).toBe("v-paused");
    expect(revert.restores?.version).toBe("v-paused");
    expect(revert.message).toMatch(/^restored web v-paused \(release v-paused-\w+, from d-[\w-]+\): 3 of 3 target\(s\) succeeded$/);
    expect((revert.targets ?? []).map((t) => t.agentId).sort()).toEqual(["a1", "a2", "a3"]);
  });

  it("RollbackRelease deploys the release before the desired one, and becomes the desired release", async () => {
    const before = await deploy("v3", {});
    expect((await client.waitTerminal(before.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const rb = await until("a rollback accepted", () => client.rollback({ requestId: rid("rollback"), app: "web", environment: "prod" }));
    expect(rb.restores?.version).toBe("v-paused");
    expect(rb.changeset?.version).toBe("v-paused");
    const done = await client.waitTerminal(rb.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.message).toMatch(/^restored web v-paused \(release v-paused-/);
    const release = await until("the rollback as the desired release", async () => {
      const r = await client.release("web", "prod");
      return r.desired?.deploymentId === rb.id ? r : undefined;
    });
    expect(release.desired?.version).toBe("v-paused");
    expect(release.history?.[0]?.deploymentId).toBe(before.id);
    // A retry of the same request, after it succeeded, is answered with it.
    const again = await client.rollback({ requestId: rb.requestId!, app: "web", environment: "prod" });
    expect(again.id).toBe(rb.id);
    const none = await grpcError(client.rollback({ requestId: rid("rollback"), app: "web", environment: "nowhere" }));
    expect(none?.code).toBe(9);
    expect(none?.details).toMatch(/no deployment of app web to environment nowhere has succeeded/);
  });

  it("RollbackRelease with `to` goes further back, by a version or a deployment id; one the history lacks, or the desired one, is refused", async () => {
    const history = async (): Promise<{ deploymentId?: string; version?: string }[]> => {
      const r = await client.release("web", "prod");
      return [r.desired!, ...(r.history ?? [])];
    };
    const before = await history();
    const v3 = before.find((r) => r.version === "v3")!.deploymentId!;
    // By version: the newest release of v1, three and more releases back.
    const toV1 = await client.rollback({ requestId: rid("rollback-to"), app: "web", environment: "prod", to: "v1" });
    expect(toV1.restores?.version).toBe("v1");
    expect(toV1.restores?.deploymentId).toBe(before.find((r) => r.version === "v1")!.deploymentId);
    expect((await client.waitTerminal(toV1.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await until("v1 desired again", async () => ((await history())[0]?.deploymentId === toV1.id ? true : undefined));
    // By deployment id.
    const toV3 = await client.rollback({ requestId: rid("rollback-to"), app: "web", environment: "prod", to: v3 });
    expect(toV3.restores?.deploymentId).toBe(v3);
    expect(toV3.changeset?.version).toBe("v3");
    expect((await client.waitTerminal(toV3.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Refused, naming why, and nothing is created.
    const unknown = await grpcError(client.rollback({ requestId: rid("rollback-to"), app: "web", environment: "prod", to: "v-never" }));
    expect(unknown?.code).toBe(9);
    expect(unknown?.details).toMatch(/^to: "v-never" is neither the deployment id nor the version of a release of web in prod that the history keeps/);
    const desired = await until("v3 desired", async () => ((await history())[0]?.deploymentId === toV3.id ? toV3.id : undefined));
    const same = await grpcError(client.rollback({ requestId: rid("rollback-to"), app: "web", environment: "prod", to: desired }));
    expect(same?.code).toBe(9);
    expect(same?.details).toMatch(/is the desired release of web in prod already/);
    expect((await history())[0]?.deploymentId).toBe(toV3.id);
  });

  it("bad canary input is refused, naming the field, and writes nothing", async () => {
    const tooMany = await grpcError(deploy("v-x", { canary: 4 }));
    expect(tooMany?.code).toBe(3);
    expect(tooMany?.details).toMatch(/strategy\.canary: 4 is more than the 3 target\(s\) deployed to/);
    const soakAlone = await grpcError(deploy("v-x", { canarySoak: { seconds: 5 } }));
    expect(soakAlone?.details).toMatch(/strategy\.canary_soak: needs a canary wave/);
    const both = await grpcError(deploy("v-x", { canary: 1, canaryPercent: "10%" }));
    expect(both?.details).toMatch(/strategy\.canary_percent: give strategy\.canary or strategy\.canary_percent, not both/);
    const plain = await client.waitTerminal((await deploy("v-plain", {})).id!);
    const err = await grpcError(client.promote(plain.id!));
    expect(err?.details).toMatch(/has no canary wave to promote/);
  });

  it("a rollback between releases of 128-character versions is readable: the note the coordinator writes is cut to fit", async () => {
    // Its note names both releases (2 × 137 characters), over the 256 a
    // recorded note may take: written whole (324 characters, before the
    // fix), the created event fails its parse when read back from the
    // stream, so only the coordinator holding it in memory knew the
    // rollback: another one, or this one restarted, would not find it.
    const long = (c: string): string => `${c}${"x".repeat(127)}`;
    for (const v of [long("a"), long("b")]) expect((await client.waitTerminal((await deploy(v, {})).id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await until("b desired", async () => ((await client.release("web", "prod")).desired?.version === long("b") ? true : undefined));
    const rb = await until("a rollback accepted", () => client.rollback({ requestId: rid("rollback-long"), app: "web", environment: "prod" }));
    const done = await client.waitTerminal(rb.id!);
    expect(done.state, done.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.restores?.version).toBe(long("a"));
    expect(done.requestedByNote).toHaveLength(256);
    expect(done.requestedByNote).toMatch(/^rollback of bx+-\w{8} \(deployment d-[\w-]+\) to ax+…$/);
  });
});
