// An API create answers once the (app, environment) lock and the request
// mapping are stored, with the created event in the mapping, and stores the
// event after its answer (createDeployment.ts, CreateOptions.answerEarly).
// The request is acknowledged then: whatever happens to the creator, the
// deployment is stored by whoever finds it missing while its lock names it.
// The creator's failure is made here by a JetStream client that refuses
// every publish (the lock and the mapping go through KV, which has its
// own), in this process, beside the stack's real coordinator: its sweep
// runs once an hour here, so what stores the deployment is the read, the
// create or the retry under test (the last test starts one that sweeps).
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { MsgRequest } from "@nats-io/jetstream";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactStore } from "../services/coordinator/src/artifacts/artifactStore.js";
import { createDeployment, parseLock, type Created } from "../services/coordinator/src/createDeployment.js";
import { Registry } from "../services/coordinator/src/registry.js";
import { requestKeyOf, validateCreate, type CreateInput } from "../services/coordinator/src/requests.js";
import { bindContext } from "../services/shared/src/js/context.js";
import { createLogger } from "../services/shared/src/log.js";
import {
  activeKey,
  COORDINATOR_SOURCE,
  eventSubject,
  EVENTS_STREAM,
  loadDeployment,
  PairBusyError,
  type Identity,
  type JsContext,
} from "../services/shared/src/index.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const TESTER: Identity = { name: "tester", via: "none" };
/** No changeset here names an artifact: the store is never asked. */
const NO_ARTIFACTS = {} as ArtifactStore;
const SUCCEEDED = "DEPLOYMENT_STATE_SUCCEEDED";

describe("CreateDeployment answered before its created event is stored", () => {
  let stack: Stack;
  let nc: NatsConnection;
  let ctx: JsContext;
  /** ctx, with every JetStream publish refused: a creator that cannot store its created event. */
  let refusing: JsContext;
  let registry: Registry;
  beforeAll(async () => {
    stack = await Stack.start({ agents: ["a1"], coordinatorEnv: { DEPLOY_SWEEP_INTERVAL_MS: "3600000" } });
    nc = await connect({ servers: stack.nats.url });
    ctx = await bindContext(nc);
    const js = new Proxy(ctx.js, {
      get(target, p) {
        if (p === "publish") return () => Promise.reject(new Error("publish refused (test)"));
        const v = Reflect.get(target, p) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    refusing = { ...ctx, js };
    registry = new Registry(ctx.agents, 60_000, createLogger("test", "silent"));
    await registry.start();
  });
  afterAll(async () => {
    await registry?.close();
    await nc?.close();
    await stack?.stop();
  });

  const inputOf = (version: string, requestId = `early-${randomUUID()}`): CreateInput =>
    validateCreate({ requestId, app: "web", environment: "prod", changeset: { version }, targets: ["a1"] }, { deliveryTimeoutMs: 60_000, applyTimeoutMs: 60_000 });
  /** How many created events the stream holds for `id` (at most one, ever). */
  const createdEvents = async (id: string): Promise<number> => {
    let n = 0;
    for (let seq = 1; ; ) {
      // MsgRequest's type lacks next_by_subj (readEvents.ts).
      const m = await ctx.jsm.streams.getMessage(EVENTS_STREAM, { seq, next_by_subj: eventSubject(id, COORDINATOR_SOURCE) } as unknown as MsgRequest);
      if (!m) return n;
      if (m.json<{ type: string }>().type === "deployment.created") n++;
      seq = m.seq + 1;
    }
  };
  /** An early create whose creator never stores its created event: acknowledged, and only in its lock and request mapping. */
  const acknowledgedOnly = async (input: CreateInput, { sweeping = false } = {}): Promise<Created> => {
    const created = await createDeployment(refusing, registry, NO_ARTIFACTS, input, TESTER, {}, { answerEarly: true });
    expect(created.stored).toBeDefined();
    created.stored!.catch(() => undefined);
    // Not stored by anyone yet, unless a coordinator that sweeps every 250 ms has already.
    if (!sweeping) expect(await loadDeployment(ctx, created.record.spec.id)).toBeUndefined();
    expect(parseLock(await ctx.deployments.get(activeKey("web", "prod")))?.deploymentId).toBe(created.record.spec.id);
    return created;
  };

  it("answers with last_sequence 0; the deployment is readable at once and stored once, as answered", async () => {
    const client = stack.client();
    const requestId = `grpc-${randomUUID()}`;
    const answer = await client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v-early" }, targets: ["a1"] });
    expect(answer.lastSequence).toBe("0");
    expect(answer.targets?.[0]?.state).toBe("TARGET_STATE_DISPATCHED");
    const read = await client.get(answer.id!);
    expect(read.id).toBe(answer.id);
    expect(read.createdAt).toEqual(answer.createdAt);
    expect((await client.waitTerminal(answer.id!)).state).toBe(SUCCEEDED);
    expect(await createdEvents(answer.id!)).toBe(1);
    expect(await stack.startsOf("a1", answer.id!)).toBe(1);
    // The mapping holds the event it answered with.
    const mapping = (await ctx.deployments.get(requestKeyOf(requestId)))?.json<{ created?: { time: string } }>();
    expect(mapping?.created?.time).toBe((await loadDeployment(ctx, answer.id!))!.record.createdAt);
  });

  it("a deployment with strategy.auto_revert is answered after its created event is stored", async () => {
    const client = stack.client();
    const answer = await client.create({ requestId: `revert-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v-auto" }, targets: ["a1"], strategy: { autoRevert: true } });
    expect(Number(answer.lastSequence)).toBeGreaterThan(0);
    expect((await client.waitTerminal(answer.id!)).state).toBe(SUCCEEDED);
  });

  it("acknowledged and not stored: a GetDeployment stores it, and it runs once", async () => {
    const { record } = await acknowledgedOnly(inputOf("v-read"));
    const read = await stack.client().get(record.spec.id);
    expect(read.id).toBe(record.spec.id);
    expect(Number(read.lastSequence)).toBeGreaterThan(0);
    expect((await stack.client().waitTerminal(record.spec.id)).state).toBe(SUCCEEDED);
    expect(await createdEvents(record.spec.id)).toBe(1);
    expect(await stack.startsOf("a1", record.spec.id)).toBe(1);
  });

  it("acknowledged and not stored: ListDeployments lists it (and stores it)", async () => {
    const { record } = await acknowledgedOnly(inputOf("v-list"));
    const listed = await stack.client().call<{ deployments?: { id?: string }[] }>("ListDeployments", { app: "web", environment: "prod" });
    expect(listed.deployments?.[0]?.id).toBe(record.spec.id);
    expect(await loadDeployment(ctx, record.spec.id)).toBeDefined();
    expect((await stack.client().waitTerminal(record.spec.id)).state).toBe(SUCCEEDED);
  });

  it("acknowledged and not stored: another request for the pair stores it and is refused busy (never takes it over as abandoned)", async () => {
    const { record } = await acknowledgedOnly(inputOf("v-busy"));
    const err = await createDeployment(ctx, registry, NO_ARTIFACTS, inputOf("v-other"), TESTER).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PairBusyError);
    expect(String(err)).toContain(record.spec.id);
    expect(await loadDeployment(ctx, record.spec.id)).toBeDefined();
    expect((await stack.client().waitTerminal(record.spec.id)).state).toBe(SUCCEEDED);
  });

  it("acknowledged and not stored: a retry of the request is answered with the deployment answered before", async () => {
    const input = inputOf("v-retry");
    const { record } = await acknowledgedOnly(input);
    const retried = await createDeployment(ctx, registry, NO_ARTIFACTS, input, TESTER, {}, { answerEarly: true });
    expect(retried.record.spec.id).toBe(record.spec.id);
    expect(retried.record.createdAt).toBe(record.createdAt);
    expect(retried.record.lastSeq).toBeGreaterThan(0);
    expect((await stack.client().waitTerminal(record.spec.id)).state).toBe(SUCCEEDED);
    expect(await createdEvents(record.spec.id)).toBe(1);
  });

  it("acknowledged and not stored: a coordinator's sweep stores it and runs it", async () => {
    const sweeping = await stack.startCoordinator({ DEPLOY_SWEEP_INTERVAL_MS: "250" });
    await stack.coordinators[0]!.kill("SIGKILL");
    const { record } = await acknowledgedOnly(inputOf("v-sweep"), { sweeping: true });
    await until("the sweep to store the created event", async () => (await loadDeployment(ctx, record.spec.id)) !== undefined, 20_000);
    expect(sweeping.logs()).toContain("stored the created event of a deployment acknowledged before it was stored");
    expect((await stack.client(stack.coordinatorAddress(sweeping)).waitTerminal(record.spec.id)).state).toBe(SUCCEEDED);
    expect(await stack.startsOf("a1", record.spec.id)).toBe(1);
  });

  it("a refused early create writes nothing", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators[1]!));
    const first = await client.create({ requestId: `busy-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v-hold" }, targets: ["a1"] });
    const requestId = `refused-${randomUUID()}`;
    const err = await client.create({ requestId, app: "web", environment: "prod", changeset: { version: "v-refused" }, targets: ["a1"] }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    // Refused while the first is not finished, or accepted after it: never a mapping without a deployment.
    const mapping = (await ctx.deployments.get(requestKeyOf(requestId)))?.json<{ deploymentId: string }>();
    if (err) expect(mapping).toBeUndefined();
    else expect((await client.get(mapping!.deploymentId)).id).toBe(mapping!.deploymentId);
    await client.waitTerminal(first.id!);
  });
});
