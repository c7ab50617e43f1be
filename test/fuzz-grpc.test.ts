// Property-based fuzzing of every DeployService request type against a real
// coordinator: random and oversized field values through the typed client,
// and random or mutated protobuf bytes on the wire (wrong wire types, cut
// messages). The coordinator must answer every call with a status (never
// crash or hang), and nothing may change: the streams and buckets hold the
// same messages before and after.
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isToken } from "../services/shared/src/index.js";
import { loadDeployProto } from "../services/shared/src/proto.js";
import { Stack } from "./helpers/stack.js";
import { rawClient, uniq, waitFor, type GrpcClient } from "./helpers/security.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const STREAMS = ["DEPLOY_EVENTS", "DEPLOY_COMMANDS", "KV_deploy_deployments", "KV_deploy_cordons", "KV_deploy_freezes", "KV_deploy_policies", "KV_deploy_agents"];
const SERVICE = "deploy.v1.DeployService";
/** Statuses a refused request may get; UNKNOWN and crashes are not among them. */
const CLEAR = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ALREADY_EXISTS,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.OUT_OF_RANGE,
]);
/** Undecodable bytes are refused by grpc-js itself before our handler runs. */
const CLEAR_RAW = new Set([...CLEAR, grpc.status.INTERNAL]);

let stack: Stack;
let client: GrpcClient;
let nc: NatsConnection;
let jsm: JetStreamManager;
let existing = "";

async function snapshot(): Promise<string> {
  const out: Record<string, number | string> = {};
  // No new stream either (an app's artifact bucket is made by its first upload).
  const names: string[] = [];
  for await (const n of jsm.streams.names()) names.push(n);
  out.streams = names.sort().join(",");
  for (const s of STREAMS) {
    const info = await jsm.streams.info(s);
    out[`${s}.last`] = info.state.last_seq;
    out[`${s}.msgs`] = info.state.messages;
  }
  return JSON.stringify(out);
}

// Strings a validator may choke on: empty, huge, unicode, subject wildcards, NULs, path tricks.
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom("", " ", "*", ">", "a.b", "../../etc/passwd", "\u0000", "web", "prod", "d-", "sha256:", "%s%n", "😀".repeat(100)),
  fc.string({ minLength: 5000, maxLength: 70_000 }),
);
const u32 = fc.oneof(fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }));
const duration = fc.record({ seconds: fc.oneof(fc.constantFrom("0", "-1", "9223372036854775807", "315576000000"), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String)), nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }) }, { requiredKeys: [] });
const strategy = fc.record({ maxConcurrency: u32, maxFailures: u32, deliveryTimeout: duration, applyTimeout: duration }, { requiredKeys: [] });
const changeset = fc.record({ version: nasty, artifact: fc.record({ name: nasty, digest: nasty }, { requiredKeys: [] }) }, { requiredKeys: [] });
const deploymentState = fc.constantFrom("DEPLOYMENT_STATE_UNSPECIFIED", "DEPLOYMENT_STATE_PENDING", "DEPLOYMENT_STATE_RUNNING", "DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED");
const afterSequence = fc.oneof(fc.constantFrom("0", "18446744073709551615", "9007199254740993"), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String));

const REQUESTS: Record<string, fc.Arbitrary<object>> = {
  CreateDeployment: fc.record(
    { requestId: nasty, app: nasty, environment: nasty, changeset, strategy, targets: fc.array(nasty, { maxLength: 20 }), requestedBy: nasty, freezeOverrideReason: nasty },
    { requiredKeys: [] },
  ),
  GetDeployment: fc.record({ deploymentId: nasty }, { requiredKeys: [] }),
  ListDeployments: fc.record({ app: nasty, environment: nasty, state: deploymentState, pageSize: u32, pageToken: nasty }, { requiredKeys: [] }),
  CancelDeployment: fc.record({ deploymentId: nasty, reason: nasty, killRunning: fc.boolean(), revert: fc.boolean() }, { requiredKeys: [] }),
  // The real deployment SUCCEEDED: never revertible (a state change otherwise, and right).
  RevertDeployment: fc.record({ deploymentId: nasty, requestedBy: nasty }, { requiredKeys: [] }),
  ListAgents: fc.record({ app: nasty, environment: nasty }, { requiredKeys: [] }),
  // Never the one registered agent (a1): cordoning it would be a state change, and right.
  CordonAgent: fc.record({ agentId: nasty.filter((s) => s !== "a1"), reason: nasty }, { requiredKeys: [] }),
  UncordonAgent: fc.record({ agentId: nasty.filter((s) => s !== "a1") }, { requiredKeys: [] }),
  DeregisterAgent: fc.record({ agentId: nasty.filter((s) => s !== "a1") }, { requiredKeys: [] }),
  // Never a valid environment: a freeze of one would be a state change, and right.
  FreezeEnvironment: fc.record(
    { environment: nasty.filter((s) => !isToken(s)), reason: nasty, duration, until: duration, name: nasty, windows: fc.array(nasty, { maxLength: 40 }), timeZone: nasty },
    { requiredKeys: [] },
  ),
  // Nothing is frozen, so a valid one changes nothing either.
  UnfreezeEnvironment: fc.record({ environment: nasty, name: nasty }, { requiredKeys: [] }),
  ListFreezes: fc.record({}),
  SetEnvironmentPolicy: fc.record(
    { environment: nasty.filter((s) => !isToken(s)), app: nasty, promoteFrom: nasty, minSoak: duration, requireCanary: fc.boolean(), reason: nasty },
    { requiredKeys: [] },
  ),
  ListEnvironmentPolicies: fc.record({}),
  GetRelease: fc.record({ app: nasty, environment: nasty }, { requiredKeys: [] }),
  GetArtifact: fc.record({ name: nasty, digest: nasty }, { requiredKeys: [] }),
  ListArtifacts: fc.record({ name: nasty }, { requiredKeys: [] }),
};

beforeAll(async () => {
  stack = await Stack.start({ agents: ["a1"] });
  client = rawClient(stack.address);
  nc = await connect({ servers: stack.nats.url });
  jsm = await jetstreamManager(nc);
  // One real, finished deployment for Get/Watch/Cancel to find; then its
  // agent goes away, so no fuzzed CreateDeployment can find a live target.
  const d = await client.unary<{ id: string }>("CreateDeployment", { requestId: uniq("seed"), app: "web", environment: "prod", changeset: { version: "v1" } });
  existing = d.id;
  await waitFor("the seed deployment to succeed", async () => (await client.unary<{ state: string }>("GetDeployment", { deploymentId: existing })).state === "DEPLOYMENT_STATE_SUCCEEDED");
  await stack.agent("a1").kill("SIGKILL");
  await waitFor("a1 not live", async () => !((await client.unary<{ agents?: { live: boolean }[] }>("ListAgents", {})).agents ?? []).some((a) => a.live), 20_000);
});

afterAll(async () => {
  client?.close();
  await nc?.close();
  await stack?.stop();
});

async function expectAlive(): Promise<void> {
  expect(stack.coordinators[0]!.running).toBe(true);
  expect(await client.code("GetDeployment", { deploymentId: existing })).toBe(grpc.status.OK);
}

describe("typed requests with random, oversized and hostile values", () => {
  for (const [method, arb] of Object.entries(REQUESTS)) {
    it(`${method}: a clear status, no state change`, async () => {
      const before = await snapshot();
      // Half the runs aim at the real deployment id, so lookups get past NOT_FOUND.
      const req = method === "GetDeployment" || method === "CancelDeployment" || method === "RevertDeployment" ? fc.oneof(arb, arb.map((r) => ({ ...r, deploymentId: existing }))) : arb;
      await fc.assert(
        fc.asyncProperty(req, async (r) => {
          const code = await client.code(method, r);
          if (!CLEAR.has(code)) throw new Error(`${method} answered ${grpc.status[code]} to ${JSON.stringify(r).slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
      expect(await snapshot()).toBe(before);
      await expectAlive();
    });
  }

  it("WatchDeployment: a clear status, no state change", async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(fc.oneof(nasty, fc.constant(existing)), afterSequence, async (deploymentId, after) => {
        const code = await new Promise<number>((resolve) => {
          const call = (client.raw.WatchDeployment as (req: object, o: grpc.CallOptions) => grpc.ClientReadableStream<unknown>).call(client.raw, { deploymentId, afterSequence: after }, { deadline: Date.now() + 10_000 });
          call.on("data", () => undefined);
          call.on("error", () => undefined);
          call.on("status", (s: grpc.StatusObject) => resolve(s.code));
        });
        if (!CLEAR.has(code)) throw new Error(`WatchDeployment answered ${grpc.status[code]} to ${deploymentId.slice(0, 100)} after ${after}`);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
    expect(await snapshot()).toBe(before);
    await expectAlive();
  });

  it("UploadArtifact: random headers and random bytes are refused, nothing stored", async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(nasty, fc.uint8Array({ maxLength: 4096 }), async (name, bytes) => {
        const code = await client.uploadCode(name, Buffer.from(bytes));
        if (code === Number(grpc.status.OK) || !CLEAR.has(code)) throw new Error(`UploadArtifact answered ${grpc.status[code]}`);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
    expect(await snapshot()).toBe(before);
    await expectAlive();
  });
});

/**
 * Requests that, valid, change state, and rightly so: REQUESTS keeps its
 * typed values out of them, but a mutated or random encoding can still
 * decode to one (a clean-clone run created a freeze: a flipped byte made
 * the environment a valid name), and is skipped.
 */
const CHANGES_STATE: Record<string, (r: Record<string, unknown>) => boolean> = {
  FreezeEnvironment: (r) => typeof r["environment"] === "string" && isToken(r["environment"]),
  SetEnvironmentPolicy: (r) => typeof r["environment"] === "string" && isToken(r["environment"]),
  CordonAgent: (r) => r["agentId"] === "a1",
  UncordonAgent: (r) => r["agentId"] === "a1",
  DeregisterAgent: (r) => r["agentId"] === "a1",
};

describe("random and mutated protobuf bytes on the wire", () => {
  const unaryRaw = (method: string, body: Buffer): Promise<number> =>
    new Promise((resolve) => {
      client.raw.makeUnaryRequest(
        `/${SERVICE}/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (e) => resolve(e ? e.code : grpc.status.OK),
      );
    });

  for (const method of Object.keys(REQUESTS)) {
    it(`${method}: random bytes and mutated encodings of valid requests`, async () => {
      const { def } = loadDeployProto();
      const svc = def[SERVICE] as unknown as Record<string, { requestSerialize: (o: object) => Buffer; requestDeserialize: (b: Buffer) => Record<string, unknown> }>;
      const serialize = svc[method]!.requestSerialize;
      const changesState = (body: Buffer): boolean => {
        const changes = CHANGES_STATE[method];
        if (!changes) return false;
        try {
          return changes(svc[method]!.requestDeserialize(body));
        } catch {
          return false; // not a request at all
        }
      };
      const valid = fc.sample(REQUESTS[method]!, { numRuns: 20, seed: 7 }).map((r) => {
        try {
          return serialize(r);
        } catch {
          return Buffer.alloc(0);
        }
      });
      const mutated = fc
        .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
        .map(([buf, flips, cut]) => {
          const b = Buffer.from(buf);
          for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
          return cut % 3 === 0 && b.length > 1 ? b.subarray(0, cut % b.length) : b;
        });
      const before = await snapshot();
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((u) => Buffer.from(u)), mutated), async (body) => {
          fc.pre(!changesState(body));
          const code = await unaryRaw(method, body);
          if (!CLEAR_RAW.has(code)) throw new Error(`${method} answered ${grpc.status[code]} to bytes ${body.toString("hex").slice(0, 200)}`);
        }),
        { numRuns: RUNS },
      );
      expect(await snapshot()).toBe(before);
      await expectAlive();
    });
  }
});
