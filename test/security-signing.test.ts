// Signed commands, end to end with real processes: a signed stack deploys;
// commands published by hand that are unsigned, forged, altered, signed by an
// unknown key or badly signed, or a genuine signed command moved to another
// agent's or deployment's subject, are refused (agent.rejected_message,
// +TERM) and never run; keys rotate without downtime.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Stack } from "./helpers/stack.js";
import { commandBytes, newKey, publishRaw, queuedCommand, signWith, uniq, waitAgentEvent, waitFor } from "./helpers/security.js";

const LONG = 180_000;
const stacks: Stack[] = [];
const conns: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(conns.splice(0).map((nc) => nc.close().catch(() => undefined)));
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

async function natsConn(stack: Stack): Promise<NatsConnection> {
  const nc = await connect({ servers: stack.nats.url });
  conns.push(nc);
  return nc;
}

const create = (version: string) => ({ requestId: uniq("req"), app: "web", environment: "prod", changeset: { version } });

describe("signed commands", () => {
  it("a signed stack deploys; every command carries the signer and a signature", { timeout: LONG }, async () => {
    const k1 = newKey();
    const stack = await Stack.start({ agents: ["a1", "a2"], coordinatorEnv: { DEPLOY_SIGNING_SEED: k1.seed }, agentEnv: { DEPLOY_AGENT_TRUSTED_SIGNERS: k1.publicKey } });
    stacks.push(stack);
    const client = stack.client();
    const d = await client.create({ ...create("v1"), strategy: { maxConcurrency: 2 } });
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const jsm = await jetstreamManager(await natsConn(stack));
    for (const a of ["a1", "a2"]) {
      expect(await stack.startsOf(a, d.id!)).toBe(1);
      const m = await queuedCommand(jsm, a, d.id!);
      expect(m!.header.get("Deploy-Signer")).toBe(k1.publicKey);
      expect(m!.header.get("Deploy-Signature")).toMatch(/^[A-Za-z0-9_-]{86}$/);
    }
    expect(stack.coordinators[0]!.logs()).toContain("commands are signed");
    expect(stack.coordinators[0]!.logs()).not.toContain(k1.seed);
    expect(stack.agent("a1").logs()).toContain("only signed commands are accepted");
  });

  it("unsigned, forged, altered, unknown-signer and malformed signatures are refused and never run", { timeout: LONG }, async () => {
    const k1 = newKey();
    const stranger = newKey();
    const stack = await Stack.start({ agents: ["a1"], coordinatorEnv: { DEPLOY_SIGNING_SEED: k1.seed }, agentEnv: { DEPLOY_AGENT_TRUSTED_SIGNERS: k1.publicKey } });
    stacks.push(stack);
    const client = stack.client();
    const nc = await natsConn(stack);
    const jsm = await jetstreamManager(nc);

    // A real, signed command to alter: the coordinator's own, for a deployment that ran.
    const real = await client.create(create("v1"));
    expect((await client.waitTerminal(real.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const stored = (await queuedCommand(jsm, "a1", real.id!))!;
    const realSig = { signer: stored.header.get("Deploy-Signer"), signature: stored.header.get("Deploy-Signature") };

    // Each one would be accepted (and declined: no such deployment) if only its signature were ignored.
    const cases: { name: string; id: string; data: (id: string) => Uint8Array; sig: (data: Uint8Array) => { signer?: string; signature?: string } | undefined; error: RegExp }[] = [
      { name: "unsigned", id: uniq("unsigned"), data: (id) => commandBytes("a1", id), sig: () => undefined, error: /not signed/ },
      { name: "signature without signer", id: uniq("nosigner"), data: (id) => commandBytes("a1", id), sig: (b) => ({ signature: signWith(stranger.seed, b) }), error: /not signed/ },
      { name: "forged: a stranger's signature under the trusted key's name", id: uniq("forged"), data: (id) => commandBytes("a1", id), sig: (b) => ({ signer: k1.publicKey, signature: signWith(stranger.seed, b) }), error: /does not match/ },
      { name: "unknown signer", id: uniq("unknown"), data: (id) => commandBytes("a1", id), sig: (b) => ({ signer: stranger.publicKey, signature: signWith(stranger.seed, b) }), error: /not a trusted signer/ },
      {
        name: "altered: the real command's signature on a changed payload",
        id: uniq("altered"),
        data: (id) => {
          const o = JSON.parse(new TextDecoder().decode(stored.data)) as Record<string, unknown>;
          return new TextEncoder().encode(JSON.stringify({ ...o, deploymentId: id }));
        },
        sig: () => realSig,
        error: /does not match/,
      },
      { name: "malformed signature", id: uniq("garbage"), data: (id) => commandBytes("a1", id), sig: () => ({ signer: k1.publicKey, signature: "not-a-signature" }), error: /malformed/ },
    ];
    for (const c of cases) {
      const data = c.data(c.id);
      await publishRaw(nc, "deploy.cmd.a1.queue", data, c.sig(data));
    }
    for (const c of cases) {
      const e = await waitAgentEvent(jsm, c.id, "a1");
      expect(e.type, c.name).toBe("agent.rejected_message");
      expect((e as { error: string }).error, c.name).toMatch(c.error);
      expect(await stack.startsOf("a1", c.id), c.name).toBe(0);
    }
    // All terminated: nothing pending, nothing redelivered.
    await waitFor("a1's consumer to be drained", async () => {
      const ci = await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1");
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    });
    expect((await jsm.consumers.info("DEPLOY_COMMANDS", "agent-a1")).num_redelivered).toBe(0);

    // A correctly signed hand-made command passes the check (and is declined: no such deployment).
    const ok = uniq("good");
    const data = commandBytes("a1", ok);
    await publishRaw(nc, "deploy.cmd.a1.queue", data, { signer: k1.publicKey, signature: signWith(k1.seed, data) });
    const e = await waitAgentEvent(jsm, ok, "a1");
    expect(e.type).toBe("target.declined");

    // The agent still deploys.
    const after = await client.create(create("v2"));
    expect((await client.waitTerminal(after.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await stack.startsOf("a1", after.id!)).toBe(1);
  });

  it("a genuinely signed command moved to another agent's queue is refused; replayed on its own it runs nothing again", { timeout: LONG }, async () => {
    const k1 = newKey();
    const stack = await Stack.start({ agents: ["a1", "a2"], coordinatorEnv: { DEPLOY_SIGNING_SEED: k1.seed }, agentEnv: { DEPLOY_AGENT_TRUSTED_SIGNERS: k1.publicKey } });
    stacks.push(stack);
    const client = stack.client();
    const nc = await natsConn(stack);
    const jsm = await jetstreamManager(nc);
    // The coordinator's own signed command to a1, unchanged: signature, signer and bytes.
    const real = await client.create({ ...create("v1"), targets: ["a1"] });
    expect((await client.waitTerminal(real.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const stored = (await queuedCommand(jsm, "a1", real.id!))!;
    const sig = { signer: stored.header.get("Deploy-Signer"), signature: stored.header.get("Deploy-Signature") };
    // To a2, same deployment: a2 refuses (the payload names a1).
    await publishRaw(nc, "deploy.cmd.a2.queue", stored.data, sig);
    const toA2 = await waitAgentEvent(jsm, real.id!, "a2");
    expect(toA2.type).toBe("agent.rejected_message");
    expect((toA2 as { error: string }).error).toMatch(/addressed to agent a1, not a2/);
    // To a1 again: its journal answers (the outcome re-reported at most), nothing runs.
    await publishRaw(nc, "deploy.cmd.a1.queue", stored.data, sig);
    await waitFor("a1 to answer it from its journal", () => stack.agent("a1").logs().includes("command already in journal"));
    expect(await stack.startsOf("a2", real.id!)).toBe(0);
    expect(await stack.startsOf("a1", real.id!)).toBe(1);
  });

  it("an agent with trusted signers refuses an unsigned coordinator's commands: nothing runs", { timeout: LONG }, async () => {
    const stack = await Stack.start({
      agents: ["a1"],
      coordinatorEnv: { DEPLOY_DEFAULT_DELIVERY_TIMEOUT_MS: "3000" },
      agentEnv: { DEPLOY_AGENT_TRUSTED_SIGNERS: newKey().publicKey },
    });
    stacks.push(stack);
    const client = stack.client();
    const d = await client.create(create("v1"));
    const jsm = await jetstreamManager(await natsConn(stack));
    const e = await waitAgentEvent(jsm, d.id!, "a1");
    expect(e.type).toBe("agent.rejected_message");
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(await stack.startsOf("a1", d.id!)).toBe(0);
    expect(stack.coordinators[0]!.logs()).toContain("commands are NOT signed");
  });

  it("rotation: pin old+new on agents, switch the coordinator, drop the old key; no deployment fails", { timeout: LONG }, async () => {
    const oldKey = newKey();
    const newK = newKey();
    const stack = await Stack.start({ agents: ["a1"], coordinatorEnv: { DEPLOY_SIGNING_SEED: oldKey.seed }, agentEnv: { DEPLOY_AGENT_TRUSTED_SIGNERS: oldKey.publicKey } });
    stacks.push(stack);
    const deployOk = async (address: string, version: string): Promise<void> => {
      const client = stack.client(address);
      const d = await client.create(create(version));
      expect((await client.waitTerminal(d.id!)).state, version).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    };
    await deployOk(stack.address, "v1");

    // 1. Agents pin both keys (a restart each, one at a time in production).
    await stack.agent("a1").kill("SIGTERM");
    await stack.startAgent("a1", { env: { DEPLOY_AGENT_TRUSTED_SIGNERS: `${oldKey.publicKey}, ${newK.publicKey}` } });
    await deployOk(stack.address, "v2");

    // 2. Coordinators switch to the new seed.
    await stack.coordinators[0]!.kill("SIGTERM");
    const second = await stack.startCoordinator({ DEPLOY_SIGNING_SEED: newK.seed });
    const address = stack.coordinatorAddress(second);
    await deployOk(address, "v3");

    // 3. Agents drop the old key; a command signed with it is now refused.
    await stack.agent("a1").kill("SIGTERM");
    await stack.startAgent("a1", { env: { DEPLOY_AGENT_TRUSTED_SIGNERS: newK.publicKey } });
    await deployOk(address, "v4");
    const nc = await natsConn(stack);
    const id = uniq("old-key");
    const data = commandBytes("a1", id);
    await publishRaw(nc, "deploy.cmd.a1.queue", data, { signer: oldKey.publicKey, signature: signWith(oldKey.seed, data) });
    const e = await waitAgentEvent(await jetstreamManager(nc), id, "a1");
    expect(e.type).toBe("agent.rejected_message");
    expect((e as { error: string }).error).toMatch(/not a trusted signer/);
  });
});
