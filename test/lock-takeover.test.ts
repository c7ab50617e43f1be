// A terminal deployment is swept (and its projection written) only while it
// holds its (app, environment) lock. When the write of its last projection
// failed (the fault suite's seed 40127: a stream leader lost as it finished)
// and the pair's next deployment takes the lock over, that creator writes
// the holder's projection first, or it would lag its stream for good. Real
// nats-server, no coordinator running (nothing else sweeps).
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactStore } from "../services/coordinator/src/artifacts/artifactStore.js";
import { createDeployment, newDeploymentId } from "../services/coordinator/src/createDeployment.js";
import { ensureInfrastructure } from "../services/coordinator/src/infrastructure.js";
import { Registry } from "../services/coordinator/src/registry.js";
import { validateCreate } from "../services/coordinator/src/requests.js";
import {
  activeKey,
  AGENT_SCHEMA,
  appendEvent,
  bindContext,
  connectNats,
  createLogger,
  encode,
  loadDeployment,
  readProjection,
  saveProjection,
  type DeploymentSpec,
  type JsContext,
} from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

describe("lock takeover from a terminal deployment", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ctx: JsContext;
  let registry: Registry;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: "test" });
    await ensureInfrastructure(nc, await jetstreamManager(nc), { replicas: 1, commandsMaxAgeMs: 60_000 });
    ctx = await bindContext(nc);
    const agent = { schema: AGENT_SCHEMA, id: "a1", environment: "prod", apps: ["web"], host: "h", version: "0.1.0", labels: {}, currentReleases: {}, startedAt: new Date().toISOString() };
    await ctx.agents.put("a1", encode(agent));
    registry = new Registry(ctx.agents, 60_000, createLogger("test", "silent"));
    await registry.start();
  });
  afterAll(async () => {
    await registry?.close();
    await nc?.close();
    await server?.cleanup();
  });

  it("writes the holder's lagging projection before taking its lock", async () => {
    const id = newDeploymentId();
    const spec: DeploymentSpec = {
      id,
      requestId: `r-${id}`,
      requestHash: "h",
      app: "web",
      environment: "prod",
      changeset: { version: "v1" },
      strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 1000 },
      targets: ["a1"],
      requestedBy: "",
    };
    const C = { source: "coordinator" } as const;
    await appendEvent(ctx, id, { type: "deployment.created", spec }, { ...C, expectLastSubjectSeq: 0 });
    const first = (await loadDeployment(ctx, id))!;
    await saveProjection(ctx, first.record, 0);
    await ctx.deployments.create(activeKey("web", "prod"), encode({ deploymentId: id, requestKey: "req.earlier" }));
    // It finishes; the write of its last projection "fails": none is made.
    await appendEvent(ctx, id, { type: "deployment.finished", state: "FAILED", message: "0 of 1" }, C);
    expect((await readProjection(ctx, id))!.record.state).not.toBe("FAILED");

    const input = validateCreate({ requestId: `next-${id}`, app: "web", environment: "prod", changeset: { version: "v2" }, targets: ["a1"] }, { deliveryTimeoutMs: 60_000, applyTimeoutMs: 60_000 });
    const next = await createDeployment(ctx, registry, {} as ArtifactStore, input, { name: "tester", via: "none" });
    expect(next.record.spec.id).not.toBe(id);

    const stored = (await readProjection(ctx, id))!.record;
    const folded = (await loadDeployment(ctx, id))!.record;
    expect(stored.state).toBe("FAILED");
    expect(stored.lastSeq).toBe(folded.lastSeq);
  });
});
