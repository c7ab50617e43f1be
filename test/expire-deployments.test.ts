// Finished deployments expire from deploy_deployments (real nats-server,
// coordinator and agents from dist/), with every age shortened: events kept
// 2 s, deployments 2 s, an expiry every 300 ms. A FAILED deployment that no
// release names goes (projection, list index entry, request mapping: no key
// left, GetDeployment NOT_FOUND, not listed, its request id free again); the
// desired release's deployment and the one before it in the history stay
// readable, and so does a convergence to the desired release. A running deployment has no list index entry, which is what an
// expiry starts from: it is never a candidate.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import { deploymentIdTime, expiryAgeMs } from "../services/coordinator/src/expireDeployments.js";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { freePort } from "./helpers/nats-server.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;

describe("expiryAgeMs and deploymentIdTime", () => {
  it("never before the events, never while events are kept for ever, 0 is never", () => {
    expect(expiryAgeMs({ deploymentsMaxAgeMs: 1000, eventsMaxAgeMs: 5000 })).toBe(5000);
    expect(expiryAgeMs({ deploymentsMaxAgeMs: 9000, eventsMaxAgeMs: 5000 })).toBe(9000);
    expect(expiryAgeMs({ deploymentsMaxAgeMs: 9000, eventsMaxAgeMs: 0 })).toBe(0);
    expect(expiryAgeMs({ deploymentsMaxAgeMs: 0, eventsMaxAgeMs: 5000 })).toBe(0);
  });
  it("reads the time a deployment id was made, and nothing else", () => {
    expect(deploymentIdTime(`d-${(1_764_800_000_000).toString(36).padStart(9, "0")}-0a1b2c3d`)).toBe(1_764_800_000_000);
    expect(deploymentIdTime("d-zz-0a1b2c3d")).toBeUndefined();
    expect(deploymentIdTime("web-1")).toBeUndefined();
  });
});

describe("finished deployments expire", () => {
  let stack: Stack;
  let client: DeployClient;
  const kvKeys = (): Promise<string[]> =>
    new Promise((resolve) =>
      execFile(toolPath("nats"), ["--server", stack.nats.url, "kv", "ls", "deploy_deployments"], (err, stdout) => resolve(err ? [] : stdout.split("\n").map((l) => l.trim()).filter(Boolean))),
    );
  const code = async (p: Promise<unknown>): Promise<number> => {
    try {
      await p;
      return grpc.status.OK;
    } catch (err) {
      return (err as grpc.ServiceError).code;
    }
  };
  const deploy = async (version: string, requestId = rid(version)): Promise<DeploymentMsg> => {
    const d = await client.create({ requestId, app: "web", environment: "prod", changeset: { version }, strategy: { maxConcurrency: 3, maxFailures: 3 } });
    return client.waitTerminal(d.id!);
  };

  let metricsPort = 0;

  beforeAll(async () => {
    metricsPort = await freePort();
    stack = await Stack.start({
      coordinatorEnv: {
        DEPLOY_EVENTS_MAX_AGE_MS: "2000",
        DEPLOY_DEPLOYMENTS_MAX_AGE_MS: "2000",
        DEPLOY_DEPLOYMENTS_EXPIRY_INTERVAL_MS: "300",
        DEPLOY_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      },
    });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("a FAILED deployment no release names is purged: no key, NOT_FOUND, not listed, its request id free; the releases' deployments stay", async () => {
    const v1 = await deploy("v1");
    expect(v1.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await stack.control("a1", "fail");
    const failedRequest = rid("v2");
    const v2 = await deploy("v2", failedRequest);
    await stack.control("a1", "fail", false);
    expect(v2.state).toBe("DEPLOYMENT_STATE_FAILED");
    const v3 = await deploy("v3");
    expect(v3.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    await until("v2 purged from deploy_deployments", async () => !(await kvKeys()).some((k) => k.includes(v2.id!)), 30_000);
    expect(await code(client.get(v2.id!))).toBe(grpc.status.NOT_FOUND);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(Number(/^deploy_deployments_expired_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect((await client.list({ pageSize: 200 })).deployments.map((d) => d.id)).not.toContain(v2.id);
    // v3 is the desired release, v1 the one before it: kept, readable after their events expired.
    const keys = await kvKeys();
    for (const d of [v1, v3]) {
      expect(keys).toContain(d.id);
      expect(keys.some((k) => k.startsWith("idx.web.prod.") && k.endsWith(d.id!))).toBe(true);
      expect((await client.get(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    }
    // A convergence to the desired release (a new agent) is kept: its request id is what makes it once.
    await stack.startAgent("a4");
    const convergence = await until("a4 converged to v3", async () => {
      const c = (await client.list({ pageSize: 200 })).deployments.find((d) => d.convergesTo === v3.id && d.targets?.[0]?.agentId === "a4");
      return c?.state === "DEPLOYMENT_STATE_SUCCEEDED" ? c : undefined;
    });
    // Past its max age (2 s) and several expiries (every 300 ms).
    await new Promise((r) => setTimeout(r, 3500));
    expect(await kvKeys()).toContain(convergence.id);
    // Its request id is remembered no longer: the same request makes a new deployment.
    const again = await deploy("v2", failedRequest);
    expect(again.id).not.toBe(v2.id);
    expect(again.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});
