// watches.max: a coordinator follows at most that many watches at once
// (gRPC WatchDeployment and the dashboard's event streams together), each a
// consumer on DEPLOY_EVENTS; one more is refused at once, UNAVAILABLE over
// gRPC and 503 over HTTP, naming the limit, and a slot is given back when a
// watch ends. DEPLOY_EVENTS and the artifact buckets have consumer limits
// of their own, so the server's default (1,000 on 2.15) neither lets
// watches starve the coordinators' own reads nor fails the 1,001st agent
// downloading a bundle at once.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../services/shared/src/index.js";
import { MAX_ARTIFACT_CONSUMERS, MAX_EVENT_CONSUMERS } from "../services/coordinator/src/infrastructure.js";
import { makeBundle } from "./helpers/bundles.js";
import { runCli, shown } from "./helpers/deployctl.js";
import { grpcError, type DeployClient, type DeploymentEventMsg } from "./helpers/client.js";
import { freePort } from "./helpers/nats-server.js";
import { metricValue } from "./helpers/metrics.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

describe("consumer limits: watches.max, DEPLOY_EVENTS and the artifact buckets", () => {
  let stack: Stack;
  let client: DeployClient;
  let httpPort = 0;
  let metricsPort = 0;
  const metric = (name: string): Promise<number | undefined> => metricValue(metricsPort, name);

  beforeAll(async () => {
    httpPort = await freePort();
    metricsPort = await freePort();
    stack = await Stack.start({
      agents: ["a1"],
      coordinatorEnv: { DEPLOY_MAX_WATCHES: "1", DEPLOY_HTTP_LISTEN: `127.0.0.1:${httpPort}`, DEPLOY_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
    });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("refuses a watch beyond the limit (UNAVAILABLE, HTTP 503), and takes one again once a watch ends", async () => {
    // The apply takes a while, so the deployment (and a watch of it) stays open.
    await stack.control("a1", { sleep: 60 });
    const d = await client.create({ requestId: "watch-limit-1", app: "web", environment: "prod", changeset: { version: "v1" } });
    const first: DeploymentEventMsg[] = [];
    const open = client.watch(d.id!, 0, (e) => first.push(e));
    open.done.catch(() => undefined);
    await until("the first watch has its events", () => Promise.resolve(first.length > 0 ? true : undefined));
    expect(await metric("deploy_watches_open")).toBe(1);

    const second = await grpcError(client.events(d.id!));
    expect(second.code).toBe(grpc.status.UNAVAILABLE);
    expect(second.details).toBe("this coordinator follows 1 watches already, its limit (watches.max, DEPLOY_MAX_WATCHES): retry shortly, or read the deployment with GetDeployment");
    const sse = await fetch(`http://127.0.0.1:${httpPort}/api/deployments/${d.id!}/events`);
    expect(sse.status).toBe(503);
    expect(await sse.text()).toContain("watches.max");
    expect(await metric("deploy_watches_refused_total")).toBe(2);
    // A read is not a watch: it is answered.
    expect((await client.get(d.id!)).id).toBe(d.id);

    open.cancel();
    await until("the slot is given back", async () => ((await metric("deploy_watches_open")) === 0 ? true : undefined));
    await stack.control("a1", { sleep: 60 }, false);
    await client.call("CancelDeployment", { deploymentId: d.id!, reason: "test over", killRunning: true });
    const events = await until("a watch is taken again", async () => {
      const got = await client.events(d.id!).catch(() => undefined);
      return got && got.length > 0 ? got : undefined;
    });
    expect(events.at(-1)!.type).toBe("deployment.finished");
    expect(await metric("deploy_watches_open")).toBe(0);
  });

  it("deployctl watch, while every watch is taken, reads the deployment until it ends (exit 0), not counting it as a coordinator gone", async () => {
    await stack.control("a1", { sleep: 4 });
    try {
      const d = await client.create({ requestId: "watch-limit-2", app: "web", environment: "prod", changeset: { version: "v2" } });
      const held: DeploymentEventMsg[] = [];
      const open = client.watch(d.id!, 0, (e) => held.push(e));
      open.done.catch(() => undefined);
      await until("the held watch has its events", () => Promise.resolve(held.length > 0 ? true : undefined));
      // A retry budget far shorter than the apply: reading while the watches are full is not a retry of a coordinator gone.
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: stack.dir, XDG_STATE_HOME: join(stack.dir, "xdg"), DEPLOY_COORDINATOR: stack.address, DEPLOYCTL_RETRY_BUDGET_MS: "1000" };
      const r = await runCli(["watch", d.id!], { env });
      open.cancel();
      expect(r.code, shown(r)).toBe(0);
      expect(r.stdout, shown(r)).toContain("UNAVAILABLE: this coordinator follows 1 watches already, its limit (watches.max, DEPLOY_MAX_WATCHES)");
      expect(r.stdout, shown(r)).toContain("reading the deployment every 2 s until a watch is free");
      expect(r.stdout, shown(r)).toMatch(/SUCCEEDED/);
    } finally {
      await stack.control("a1", { sleep: 4 }, false);
    }
  });

  it("DEPLOY_EVENTS has a consumer limit of its own, above the server's default of 1,000", async () => {
    const nc = await connectNats({ url: stack.nats.url, name: "test" });
    try {
      const info = await (await jetstreamManager(nc)).streams.info("DEPLOY_EVENTS");
      expect(info.config.max_consumers).toBe(MAX_EVENT_CONSUMERS);
    } finally {
      await nc.close();
    }
  });

  it("so does an app's artifact bucket (an agent from before holds a consumer per download), one made before included once a coordinator starts", async () => {
    await client.upload("web", await makeBundle([{ name: "deploy.yaml", content: "version: 1\n" }]));
    const nc = await connectNats({ url: stack.nats.url, name: "test" });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info("OBJ_deploy_artifacts_web");
      expect(info.config.max_consumers).toBe(MAX_ARTIFACT_CONSUMERS);
      // As an earlier version made it: no limit of its own (the server's default applies).
      await jsm.streams.update("OBJ_deploy_artifacts_web", { ...info.config, ...({ max_consumers: -1 } as object) });
      expect((await jsm.streams.info("OBJ_deploy_artifacts_web")).config.max_consumers).toBe(-1);
      await stack.startCoordinator({ DEPLOY_HTTP_LISTEN: "", DEPLOY_METRICS_LISTEN: "" });
      expect((await jsm.streams.info("OBJ_deploy_artifacts_web")).config.max_consumers).toBe(MAX_ARTIFACT_CONSUMERS);
    } finally {
      await nc.close();
    }
  });
});
