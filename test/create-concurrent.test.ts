// CreateDeployment writes the (app, environment) lock and the request mapping
// together (createDeployment.ts, step 2), so identical calls racing may split
// them: one takes the lock, another records the mapping. Whoever recorded the
// mapping creates the deployment; the lock's taker gives it back or has it
// claimed. Driven here at the function level against the stack's real
// nats-server: 8 calls at once, each on its own connection (as calls to
// several coordinators), and the split's lock written by hand, as the racing
// calls seldom split it on one machine (none did in 12 rounds, traced).
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactStore } from "../services/coordinator/src/artifacts/artifactStore.js";
import { createDeployment, newDeploymentId, parseLock, releaseLock } from "../services/coordinator/src/createDeployment.js";
import { Registry } from "../services/coordinator/src/registry.js";
import { requestKeyOf, validateCreate, type CreateInput } from "../services/coordinator/src/requests.js";
import { bindContext } from "../services/shared/src/js/context.js";
import { createLogger } from "../services/shared/src/log.js";
import { activeKey, ConflictError, type Identity, type JsContext } from "../services/shared/src/index.js";
import { Stack } from "./helpers/stack.js";

const rid = (label: string): string => `${label}-${randomUUID()}`;
const TESTER: Identity = { name: "tester", via: "none" };
/** No changeset here names an artifact: the store is never asked. */
const NO_ARTIFACTS = {} as ArtifactStore;

describe("CreateDeployment, identical calls racing", () => {
  let stack: Stack;
  let nc: NatsConnection;
  let ctx: JsContext;
  let registry: Registry;
  /** One connection per racing call: the server then orders their writes independently (as for calls to several coordinators). */
  let racers: JsContext[];
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1"] });
    nc = await connect({ servers: stack.nats.url });
    ctx = await bindContext(nc);
    racers = await Promise.all(Array.from({ length: 8 }, async () => bindContext(await connect({ servers: stack.nats.url }))));
    registry = new Registry(ctx.agents, 60_000, createLogger("test", "silent"));
    await registry.start();
  });
  afterAll(async () => {
    await registry?.close();
    await Promise.all((racers ?? []).map((r) => r.nc.close()));
    await nc?.close();
    await stack?.stop();
  });

  const inputOf = (requestId: string, version: string): CreateInput =>
    validateCreate({ requestId, app: "web", environment: "prod", changeset: { version }, targets: ["a1"] }, { deliveryTimeoutMs: 60_000, applyTimeoutMs: 60_000 });
  const mappingOf = async (requestId: string): Promise<string | undefined> => (await ctx.deployments.get(requestKeyOf(requestId)))?.json<{ deploymentId: string }>().deploymentId;
  const lockHolder = async (): Promise<string | undefined> => parseLock(await ctx.deployments.get(activeKey("web", "prod")))?.deploymentId;

  it("8 calls at once, 12 rounds: one deployment per request, each call answered with it or a retryable conflict", async () => {
    for (let round = 0; round < 12; round++) {
      const input = inputOf(rid(`race-${round}`), `v-race-${round}`);
      const results = await Promise.allSettled(racers.map((racer) => createDeployment(racer, registry, NO_ARTIFACTS, input, TESTER)));
      for (const r of results) if (r.status === "rejected") expect(r.reason, String(r.reason)).toBeInstanceOf(ConflictError);
      const ids = new Set(results.flatMap((r) => (r.status === "fulfilled" ? [r.value.record.spec.id] : [])));
      expect(ids.size, `round ${round}`).toBe(1);
      const [id] = [...ids] as [string];
      expect(await mappingOf(input.requestId)).toBe(id);
      expect(await lockHolder()).toBe(id);
      // Each call that took or claimed the lock knows its revision, which
      // the finish gives it back by without reading it (releaseLock).
      const lockRevision = (await ctx.deployments.get(activeKey("web", "prod")))!.revision;
      const known = results.flatMap((r) => (r.status === "fulfilled" && r.value.lockRevision !== undefined ? [r.value.lockRevision] : []));
      expect(known.length, `round ${round}`).toBeGreaterThan(0);
      for (const k of known) expect(k, `round ${round}`).toBe(lockRevision);
      // A retry now is answered with it too.
      expect((await createDeployment(ctx, registry, NO_ARTIFACTS, input, TESTER)).record.spec.id).toBe(id);
      // The stack's coordinator finds it through its lock and runs it.
      expect((await stack.client().waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await stack.startsOf("a1", id)).toBe(1);
    }
  });

  // The split, one side at a time: the lock written by an identical call
  // whose mapping create lost. The call that recorded the mapping claims the
  // lock at once (it used to wait FOLLOW_MS for a mapping under that lock),
  // and the loser's give-back leaves the claimed lock alone.
  it("a lock of the same request under another deployment id is claimed by the call that recorded the mapping", async () => {
    const input = inputOf(rid("split"), "v-split");
    const loser = newDeploymentId();
    await ctx.deployments.create(activeKey("web", "prod"), JSON.stringify({ deploymentId: loser, requestKey: requestKeyOf(input.requestId) }));
    const created = await createDeployment(ctx, registry, NO_ARTIFACTS, input, TESTER);
    const id = created.record.spec.id;
    expect(id).not.toBe(loser);
    expect(await mappingOf(input.requestId)).toBe(id);
    expect(await lockHolder()).toBe(id);
    expect(await releaseLock(ctx, activeKey("web", "prod"), loser)).toBe(false);
    expect(await lockHolder()).toBe(id);
    expect((await stack.client().waitTerminal(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", id)).toBe(1);
  });

  it("a lock given back by the revision its creator wrote: a lock taken over since stays; its own goes, with no read", async () => {
    const key = activeKey("lock-by-revision", "prod");
    const r1 = await ctx.deployments.create(key, JSON.stringify({ deploymentId: "d-old", requestKey: "req.old" }));
    const r2 = await ctx.deployments.update(key, JSON.stringify({ deploymentId: "d-new", requestKey: "req.new" }), r1);
    // r1 is still in the key's history: "held" says the purge removed it.
    expect(await releaseLock(ctx, key, "d-old", r1)).toBe(true);
    expect(parseLock(await ctx.deployments.get(key))?.deploymentId).toBe("d-new");
    expect(await releaseLock(ctx, key, "d-new", r2)).toBe(true);
    expect(await ctx.deployments.get(key)).toBeNull();
    expect(await releaseLock(ctx, key, "d-new", r2)).toBe(false);
  });
});
