// Property-based fuzzing of every NATS message type: the one validator per
// type (parseCommand, parseEvent, parseAgentRecord) and the signature check
// take random bytes, random JSON, mutated valid messages, oversized fields and
// unknown schema versions, and either return a valid message or throw
// ValidationError, nothing else. Then a live agent and coordinator are fed
// random bytes on their subjects and keep working.
import fc from "fast-check";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, describe, expect, it } from "vitest";
import { ValidationError } from "../services/shared/src/errors.js";
import { parseAgentRecord, parseCommand, parseEvent } from "../services/shared/src/schemas.js";
import { verifySignature } from "../services/shared/src/signing.js";
import { Stack } from "./helpers/stack.js";
import { newKey, signWith, uniq, waitFor } from "./helpers/security.js";
import { DeployClient } from "./helpers/client.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const now = new Date().toISOString();

const VALID = {
  command: { schema: "deploy.command.v1", deploymentId: "d-1", agentId: "a1", app: "web", environment: "prod", changeset: { version: "v1", artifact: { name: "web", digest: `sha256:${"a".repeat(64)}`, size: 10 } }, applyTimeoutMs: 1000, issuedAt: now },
  events: [
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "deployment.created", spec: { id: "d-1", requestId: "r", requestHash: "h", app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 1000 }, targets: ["a1"], requestedBy: "me" } },
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "targets.dispatched", agentIds: ["a1", "a2"] },
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "target.progress", agentId: "a1", lines: ["x"], linesCut: 0 },
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "ok", exitCode: 0, durationMs: 5 },
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "agent.rejected_message", agentId: "a1", subject: "deploy.cmd.a1.x", error: "bad" },
    { schema: "deploy.event.v1", deploymentId: "d-1", time: now, type: "deployment.finished", state: "SUCCEEDED", message: "done" },
  ],
  agent: { schema: "deploy.agent.v1", id: "a1", environment: "prod", apps: ["web"], host: "h", version: "0.1.0", labels: { a: "b" }, currentReleases: { web: "v1-x" }, startedAt: now },
};

/** A JSON value with nested mutations: a key set to anything, deleted, or a string grown huge. */
function mutate(base: unknown): fc.Arbitrary<unknown> {
  const paths: string[][] = [];
  const walk = (v: unknown, p: string[]): void => {
    paths.push(p);
    if (v && typeof v === "object") for (const [k, c] of Object.entries(v)) walk(c, [...p, k]);
  };
  walk(base, []);
  const value = fc.oneof(
    fc.anything(),
    fc.string({ minLength: 5000, maxLength: 100_000 }),
    fc.constantFrom("deploy.command.v2", "deploy.event.v0", "deploy.agent.v9", "", null, -1, 1e308, Number.MAX_SAFE_INTEGER + 2, "d-1.x", "*", ">", [], {}),
  );
  const op = fc.tuple(fc.constantFrom(...paths), fc.oneof(value, fc.constant(Symbol.for("delete"))));
  return fc.array(op, { minLength: 1, maxLength: 4 }).map((ops) => {
    const copy = structuredClone(base) as Record<string, unknown>;
    let root: unknown = copy;
    for (const [p, drawn] of ops) {
      // A copy of each object drawn: the constants [] and {} are one instance
      // for every draw, so setting the root to {} and then a key to {} made
      // the value contain itself (JSON.stringify threw, once in a full run).
      const v = drawn !== null && typeof drawn === "object" ? structuredClone(drawn) : drawn;
      if (p.length === 0) {
        root = v === Symbol.for("delete") ? undefined : v;
        continue;
      }
      let o = root as Record<string, unknown> | undefined;
      for (const k of p.slice(0, -1)) o = o && typeof o === "object" ? (o[k] as Record<string, unknown>) : undefined;
      if (o && typeof o === "object") {
        if (v === Symbol.for("delete")) delete o[p.at(-1)!];
        else o[p.at(-1)!] = v;
      }
    }
    return root;
  });
}

const inputs = (valid: unknown[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 4096 }),
    fc.string().map(enc),
    fc.json().map(enc),
    fc.anything().map((v) => enc(JSON.stringify(v) ?? "null")),
    ...valid.map((v) => mutate(v).map((m) => enc(JSON.stringify(m) ?? "undefined"))),
  );

/** Throws ValidationError or returns something that survives a round trip; never anything else. */
function checkParser<T>(parse: (d: Uint8Array) => T, schema: string): (d: Uint8Array) => void {
  return (data) => {
    let out: T;
    try {
      out = parse(data);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw new Error(`threw ${String(err)} (not a ValidationError)`);
      if (!/^[\w.[\]-]+: /.test(err.message)) throw new Error(`error does not name the field: ${err.message}`);
      return;
    }
    expect((out as { schema: string }).schema).toBe(schema);
    expect(parse(enc(out))).toEqual(out);
  };
}

describe("message validators on hostile input", () => {
  it("parseCommand", () => {
    fc.assert(fc.property(inputs([VALID.command]), checkParser(parseCommand, "deploy.command.v1")), { numRuns: RUNS });
  });
  it("parseEvent", () => {
    fc.assert(fc.property(inputs(VALID.events), checkParser(parseEvent, "deploy.event.v1")), { numRuns: RUNS });
  });
  it("parseAgentRecord", () => {
    fc.assert(fc.property(inputs([VALID.agent]), checkParser(parseAgentRecord, "deploy.agent.v1")), { numRuns: RUNS });
  });
  it("verifySignature: random headers and bytes never throw and never verify", () => {
    const k = newKey();
    const good = enc(VALID.command);
    const sig = signWith(k.seed, good);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.option(fc.oneof(fc.string(), fc.constant(sig))), fc.option(fc.oneof(fc.string(), fc.constant(k.publicKey))), (data, s, signer) => {
        const h = { get: (n: string): string => (n === "Deploy-Signature" ? (s ?? "") : n === "Deploy-Signer" ? (signer ?? "") : "") };
        const v = verifySignature(data, h, [k.publicKey]);
        if (v.ok) expect(Buffer.from(data).equals(Buffer.from(good))).toBe(true);
      }),
      { numRuns: RUNS },
    );
    expect(verifySignature(good, { get: (n) => (n === "Deploy-Signature" ? sig : k.publicKey) }, [k.publicKey]).ok).toBe(true);
  });
});

describe("live processes fed random bytes", () => {
  let stack: Stack | undefined;
  let nc: NatsConnection | undefined;
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
  });

  it("an agent terminates every random command, a coordinator skips random events and registry entries; both keep working", { timeout: 180_000 }, async () => {
    stack = await Stack.start({ agents: ["a1"] });
    nc = await connect({ servers: stack.nats.url });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const client: DeployClient = stack.client();
    const payloads = fc.sample(inputs([VALID.command, ...VALID.events, VALID.agent]), { numRuns: 100 });
    const hdrs = fc.sample(fc.dictionary(fc.constantFrom("Deploy-Signature", "Deploy-Signer", "Deploy-Id", "Agent-Id", "X"), fc.string({ minLength: 1, maxLength: 100 }).filter((s) => /^[\x21-\x7e]+$/.test(s))), { numRuns: 100 });
    const ids: string[] = [];
    for (let i = 0; i < payloads.length; i++) {
      const id = uniq("fz");
      ids.push(id);
      const h = headers();
      for (const [k, v] of Object.entries(hdrs[i]!)) h.set(k, v);
      await js.publish(`deploy.cmd.a1.${id}`, payloads[i], { headers: h });
      // Events a coordinator is woken by, about deployments real and not.
      await js.publish(`deploy.evt.${id}.coordinator`, payloads[i]);
      await js.publish(`deploy.evt.${id}.a1`, payloads[i]);
    }
    const agents = await new Kvm(nc).open("deploy_agents");
    for (let i = 0; i < 20; i++) await agents.put(`fz-${i}`, payloads[i]!);

    await waitFor("the agent's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    }, 60_000);
    expect((await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1")).num_redelivered).toBe(0);
    await waitFor("the coordinator's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_EVENTS", "coordinator");
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    }, 60_000);

    const d = await client.create({ requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v1" } });
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(stack.agent("a1").running).toBe(true);
    expect(stack.coordinators[0]!.running).toBe(true);
    for (const id of ids) expect(await stack.startsOf("a1", id)).toBe(0);
    expect((await client.agents()).agents.map((a) => a.id)).toEqual(["a1"]);
  });
});
