// Webhook notifications (notify.url) end to end, on a real nats-server,
// coordinator and agents from dist/, and a webhook receiver on loopback: a
// deployment's end, a halted rollout and a canary wave waiting for its
// promote are POSTed, signed (Deploy-Signature: HMAC-SHA256 of the body), with
// a text line; a receiver that refuses is tried again with the same
// Deploy-Delivery until it takes it; a notification outlives the
// coordinator that had it to send; events of other types are not sent.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Notification } from "../services/coordinator/src/notifier.js";
import { notificationOf, signature } from "../services/coordinator/src/notifier.js";
import { foldAll, makeEvent, type DeploymentSpec } from "../services/shared/src/index.js";
import { loadCoordinatorConfig } from "../services/coordinator/src/config.js";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const SECRET = `s-${randomUUID()}`;

interface Received {
  body: Notification;
  raw: string;
  headers: Record<string, string | string[] | undefined>;
  answered: number;
}

describe("webhook notifications", () => {
  let stack: Stack;
  let client: DeployClient;
  let server: Server;
  const received: Received[] = [];
  /** The answers the receiver gives next (then 200). */
  const refusals: number[] = [];

  const deploy = async (version: string, strategy: Record<string, unknown> = {}): Promise<DeploymentMsg> => {
    const d = await client.create({ requestId: `${version}-${randomUUID()}`, app: "web", environment: "prod", changeset: { version }, strategy: { maxConcurrency: 3, ...strategy } });
    return d;
  };
  const taken = (id: string, event: string): Received[] => received.filter((r) => r.answered === 200 && r.body.deployment?.id === id && r.body.event === event);
  const arrives = (id: string, event: string): Promise<Received> => until(`${event} of ${id} delivered`, () => Promise.resolve(taken(id, event)[0]), 30_000);

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => (raw += c.toString()));
      req.on("end", () => {
        const answered = refusals.shift() ?? 200;
        received.push({ body: JSON.parse(raw) as Notification, raw, headers: req.headers, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const dir = mkdtempSync(join(tmpdir(), "notify-"));
    writeFileSync(join(dir, "secret"), `${SECRET}\n`);
    stack = await Stack.start({
      coordinatorEnv: {
        DEPLOY_NOTIFY_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/deploy`,
        DEPLOY_NOTIFY_SECRET_FILE: join(dir, "secret"),
        DEPLOY_NOTIFY_RETRY_MS: "200",
        DEPLOY_NOTIFY_ENVIRONMENTS: "prod",
        DEPLOY_NOTIFY_APPS: "web,shop",
      },
    });
    await stack.startAgent("st1", { environment: "staging" });
    await stack.startAgent("api1", { apps: { api: { deploy: "/bin/true" } } });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
    server?.close();
  });

  it("a deployment's end is POSTed once, signed, with a text line, its counts and the same delivery id in header and body", async () => {
    const d = await deploy("v1");
    await client.waitTerminal(d.id!);
    const r = await arrives(d.id!, "deployment.finished");
    expect(r.body).toMatchObject({
      event: "deployment.finished",
      deployment: { id: d.id, app: "web", environment: "prod", version: "v1", state: "SUCCEEDED", counts: { SUCCEEDED: 3 }, kind: "deployment", requestedBy: "anonymous (development mode)" },
    });
    expect(r.body.text).toBe(`web v1 to prod (${d.id}): SUCCEEDED: 3 of 3 target(s) succeeded`);
    expect(r.headers["deploy-signature"]).toBe(signature(SECRET, r.raw));
    expect(r.headers["deploy-event"]).toBe("deployment.finished");
    expect(r.headers["deploy-delivery"]).toBe(r.body.delivery);
    expect(r.headers["content-type"]).toBe("application/json");
    // Nothing else of it (created, dispatches, started) was sent.
    expect(received.filter((x) => x.body.deployment?.id === d.id).map((x) => x.body.event)).toEqual(["deployment.finished"]);
  });

  it("a halted rollout and its FAILED end; a canary wave waiting for its promote, then its cancel's end", async () => {
    await stack.control("a1", "fail");
    const failing = await deploy("v2", { maxConcurrency: 1 });
    await client.waitTerminal(failing.id!);
    await stack.control("a1", "fail", false);
    expect((await arrives(failing.id!, "deployment.halted")).body.text).toMatch(/: rollout halted: 1 failed target\(s\) exceed max_failures 0/);
    expect((await arrives(failing.id!, "deployment.finished")).body.deployment).toMatchObject({ state: "FAILED" });

    const canary = await deploy("v3", { canary: 1 });
    expect((await arrives(canary.id!, "deployment.canary_done")).body.text).toContain("waiting for a promote");
    await client.cancel(canary.id!, "not today");
    await client.waitTerminal(canary.id!);
    expect((await arrives(canary.id!, "deployment.finished")).body.deployment?.state).toBe("CANCELLED");
  });

  it("a receiver that refuses gets it again, with the same delivery id, until it takes it", async () => {
    refusals.push(503, 500);
    const d = await deploy("v4");
    await client.waitTerminal(d.id!);
    const r = await arrives(d.id!, "deployment.finished");
    const tries = received.filter((x) => x.body.deployment?.id === d.id && x.body.event === "deployment.finished");
    expect(tries.map((x) => x.answered)).toEqual([503, 500, 200]);
    expect(new Set(tries.map((x) => x.headers["deploy-delivery"]))).toEqual(new Set([r.body.delivery]));
  });

  it("only the environments of notify.environments and the apps of notify.apps: a staging deployment and one of app api are passed over", async () => {
    const staging = await client.create({ requestId: `st-${randomUUID()}`, app: "web", environment: "staging", changeset: { version: "s1" }, strategy: {} });
    const api = await client.create({ requestId: `api-${randomUUID()}`, app: "api", environment: "prod", changeset: { version: "a1" }, strategy: {} });
    await client.waitTerminal(staging.id!);
    expect((await client.waitTerminal(api.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Every event the notifier was given has been handled (acked) once its consumer has none pending.
    const nc = await connect({ servers: stack.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await until("the notifier consumer drained", async () => {
        const ci = await jsm.consumers.info("DEPLOY_EVENTS", "notifier");
        return ci.num_pending === 0 && ci.num_ack_pending === 0;
      }, 30_000);
    } finally {
      await nc.close();
    }
    expect(received.filter((x) => x.body.deployment?.id === staging.id || x.body.deployment?.id === api.id)).toEqual([]);
  });

  it("a freeze and its lift are POSTed once each, signed, naming who and why; a freeze of an environment not in notify.environments is passed over", async () => {
    const freezes = (): Received[] => received.filter((x) => x.body.freeze !== undefined && x.answered === 200);
    await client.call("FreezeEnvironment", { environment: "staging", reason: "not notified" });
    await client.call("FreezeEnvironment", { environment: "prod", reason: "incident INC-7", duration: { seconds: 3600 } });
    const frozen = await until("environment.frozen delivered", () => Promise.resolve(freezes().find((x) => x.body.event === "environment.frozen")), 30_000);
    expect(frozen.body.text).toMatch(/^environment prod is frozen by anonymous \(development mode\) at \S+ until \S+: incident INC-7$/);
    expect(frozen.body.freeze).toMatchObject({ environment: "prod", frozen: true, reason: "incident INC-7", by: { name: "anonymous (development mode)" } });
    expect(frozen.body.delivery).toMatch(/^freeze\.\d+$/);
    expect(frozen.headers["deploy-delivery"]).toBe(frozen.body.delivery);
    expect(frozen.headers["deploy-event"]).toBe("environment.frozen");
    expect(frozen.headers["deploy-signature"]).toBe(signature(SECRET, frozen.raw));
    await client.call("UnfreezeEnvironment", { environment: "prod" });
    const lifted = await until("environment.unfrozen delivered", () => Promise.resolve(freezes().find((x) => x.body.event === "environment.unfrozen")), 30_000);
    expect(lifted.body.text).toMatch(/^environment prod unfrozen by anonymous \(development mode\) at \S+$/);
    // Every write to deploy_freezes has been handled once its consumer has none pending: the staging one was not sent.
    const nc = await connect({ servers: stack.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await until("the freeze notifier drained", async () => {
        const ci = await jsm.consumers.info("KV_deploy_freezes", "notifier");
        return ci.num_pending === 0 && ci.num_ack_pending === 0 ? true : undefined;
      }, 30_000);
    } finally {
      await nc.close();
    }
    expect(freezes().map((x) => [x.body.event, x.body.freeze?.environment])).toEqual([
      ["environment.frozen", "prod"],
      ["environment.unfrozen", "prod"],
    ]);
    await client.call("UnfreezeEnvironment", { environment: "staging" });
  });

  it("a policy set and cleared is POSTed once each, signed, naming who, why and the rules; one of an environment not in notify.environments is passed over", async () => {
    const policies = (): Received[] => received.filter((x) => x.body.policy !== undefined && x.answered === 200);
    await client.call("SetEnvironmentPolicy", { environment: "staging", requireCanary: true, reason: "not notified" });
    await client.call("SetEnvironmentPolicy", { environment: "prod", promoteFrom: "staging", minSoak: { seconds: 7200 }, requireCanary: true, reason: "prod runs what staging ran" });
    const set = await until("the policy set delivered", () => Promise.resolve(policies()[0]), 30_000);
    expect(set.body.event).toBe("environment.policy_changed");
    expect(set.body.text).toMatch(/^environment prod's policy set by anonymous \(development mode\) at \S+: prod runs what staging ran; it accepts only promotions from staging, desired there at least 2h; a canary wave$/);
    expect(set.body.policy).toMatchObject({ environment: "prod", promoteFrom: "staging", minSoakMs: 7_200_000, requireCanary: true });
    expect(set.body.delivery).toMatch(/^policy\.\d+$/);
    expect(set.headers["deploy-event"]).toBe("environment.policy_changed");
    expect(set.headers["deploy-signature"]).toBe(signature(SECRET, set.raw));
    await client.call("SetEnvironmentPolicy", { environment: "prod", reason: "hotfix INC-9 straight from a build" });
    const cleared = await until("the policy cleared delivered", () => Promise.resolve(policies()[1]), 30_000);
    expect(cleared.body.text).toMatch(/^environment prod's policy cleared by anonymous \(development mode\) at \S+: hotfix INC-9 straight from a build; every deployment to it is accepted$/);
    const nc = await connect({ servers: stack.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await until("the policy notifier drained", async () => {
        const ci = await jsm.consumers.info("KV_deploy_policies", "notifier");
        return ci.num_pending === 0 && ci.num_ack_pending === 0 ? true : undefined;
      }, 30_000);
    } finally {
      await nc.close();
    }
    expect(policies().map((x) => x.body.policy?.environment)).toEqual(["prod", "prod"]);
    await client.call("SetEnvironmentPolicy", { environment: "staging", reason: "done" });
  });

  it("a freeze that ends by itself is POSTed once, at its end, though two coordinators watch it (freezeEdges.ts)", async () => {
    const second = await stack.startCoordinator();
    try {
      const edges = (): Received[] => received.filter((x) => x.body.edge !== undefined && x.answered === 200);
      await client.call("FreezeEnvironment", { environment: "prod", name: "brief", reason: "a short one", duration: { seconds: 2 } });
      const ended = await until("the freeze's end delivered", () => Promise.resolve(edges().find((x) => x.body.freeze?.name === "brief")), 30_000);
      expect(ended.body.event).toBe("environment.unfrozen");
      expect(ended.body.edge).toBe("ended");
      // At the freeze's own end, to the millisecond, whichever coordinator saw it first.
      expect(ended.body.time).toBe(ended.body.freeze!.until);
      expect(ended.body.text).toBe(`environment prod ("brief") unfrozen at ${ended.body.time}: the freeze ended by itself (frozen ("brief") by anonymous (development mode) at ${ended.body.freeze!.at} until ${ended.body.time}: a short one)`);
      expect(ended.headers["deploy-event"]).toBe("environment.unfrozen");
      expect(ended.headers["deploy-signature"]).toBe(signature(SECRET, ended.raw));
      // Both coordinators ticked past it (every 5 s): still one.
      await new Promise((r) => setTimeout(r, 6000));
      expect(edges().filter((x) => x.body.freeze?.name === "brief")).toHaveLength(1);
      // The marker is no freeze: no coordinator tried to read it as one.
      for (const c of stack.coordinators) expect(c.logs()).not.toContain("ignoring invalid freeze record");
    } finally {
      await second.kill("SIGTERM");
      stack.coordinators.splice(stack.coordinators.indexOf(second), 1);
    }
  });

  it("outlives its coordinator: refused until the coordinator is replaced, then delivered by the new one", async () => {
    refusals.push(...Array.from({ length: 1000 }, () => 503));
    const d = await deploy("v5");
    await client.waitTerminal(d.id!);
    await until("a refused attempt", () => Promise.resolve(received.some((x) => x.body.deployment?.id === d.id && x.answered === 503)), 30_000);
    await stack.coordinators[0]!.kill("SIGKILL");
    stack.coordinators.splice(0, 1);
    refusals.length = 0;
    await stack.startCoordinator();
    await arrives(d.id!, "deployment.finished");
  });

  it("a freeze that ends while no coordinator runs is told by the next one to start, late, at its own end", async () => {
    const c = stack.client(stack.coordinatorAddress(stack.coordinators[0]!));
    await c.call("FreezeEnvironment", { environment: "prod", name: "gap", reason: "ends unwatched", duration: { seconds: 3 } });
    await until("the freeze delivered", () => Promise.resolve(received.find((x) => x.body.freeze?.name === "gap" && x.body.edge === undefined && x.answered === 200)), 30_000);
    await stack.coordinators[0]!.kill("SIGKILL");
    stack.coordinators.splice(0, 1);
    await new Promise((r) => setTimeout(r, 4000));
    await stack.startCoordinator();
    const ended = await until("the end told late", () => Promise.resolve(received.find((x) => x.body.freeze?.name === "gap" && x.body.edge === "ended" && x.answered === 200)), 30_000);
    expect(ended.body.time).toBe(ended.body.freeze!.until);
    expect(ended.body.event).toBe("environment.unfrozen");
  });
});

describe("notify configuration", () => {
  it("refuses at start what would not work, naming the key", () => {
    expect(() => loadCoordinatorConfig([], { notify: { url: "http://hooks.example.com/x" } })).toThrow(/notify\.url: must be https in production mode/);
    expect(() => loadCoordinatorConfig([], { devMode: true, notify: { url: "ftp://x" } })).toThrow(/notify\.url: ftp: is not http or https/);
    expect(() => loadCoordinatorConfig([], { devMode: true, notify: { url: "https://x", events: ["deployment.finishd"] } })).toThrow(/notify\.events: "deployment\.finishd" is not one of/);
    const dir = mkdtempSync(join(tmpdir(), "notify-cfg-"));
    writeFileSync(join(dir, "short"), "abc");
    expect(() => loadCoordinatorConfig([], { devMode: true, notify: { url: "https://x", secretFile: join(dir, "short") } })).toThrow(/notify\.secretFile: .* fewer than 16 characters/);
    expect(loadCoordinatorConfig([], { devMode: true, notify: { url: "https://hooks.example.com/x" } }).notify.events).toEqual(["deployment.finished", "deployment.halted", "deployment.canary_done", "environment.frozen", "environment.unfrozen", "environment.policy_changed"]);
    expect(() => loadCoordinatorConfig([], { devMode: true, notify: { url: "https://x", environments: ["prod", "no such env"] } })).toThrow(/notify\.environments: "no such env" is not an environment name/);
    expect(() => loadCoordinatorConfig([], { devMode: true, notify: { url: "https://x", apps: ["web", "a.b"] } })).toThrow(/notify\.apps: "a\.b" is not an app name/);
  });
});

describe("deployment.created notifications (opt-in: notify.events)", () => {
  const spec: DeploymentSpec = {
    id: "d-1",
    requestId: "r-1",
    requestHash: "h",
    app: "web",
    environment: "prod",
    changeset: { version: "v2" },
    strategy: { maxConcurrency: 2, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000, canary: 1 },
    targets: ["p1", "p2", "p3"],
    requestedBy: "alice",
    requestedByVia: "token",
    requestedByNote: "release train 42",
  };
  const created = makeEvent(spec.id, { type: "deployment.created", spec });

  it("says who started what, to how many targets and how", () => {
    const rec = foldAll([{ seq: 1, time: new Date(0).toISOString(), source: "coordinator", event: created }])!;
    const n = notificationOf(created, 1, rec);
    expect(n.event).toBe("deployment.created");
    expect(n.text).toBe("web v2 to prod (d-1): started by alice (release train 42): 3 target(s), 2 at a time, a canary wave of 1 first");
    expect(n.deployment).toMatchObject({ state: "PENDING", requestedBy: "alice", kind: "deployment", counts: { PENDING: 3 } });
  });

  it("is not sent unless asked for, and may be", () => {
    const base = { devMode: true, notify: { url: "https://hooks.example.com/x" } };
    expect(loadCoordinatorConfig([], base).notify.events).not.toContain("deployment.created");
    expect(loadCoordinatorConfig([], { ...base, notify: { ...base.notify, events: ["deployment.created", "deployment.finished"] } }).notify.events).toEqual(["deployment.created", "deployment.finished"]);
  });
});
