// A release the coordinator folded from a deployment's results stands in its
// registry over the agent's own entry until the entry shows it (the agent
// writes it beside its result, not before): Registry.noteRelease.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureInfrastructure } from "../services/coordinator/src/infrastructure.js";
import { Registry } from "../services/coordinator/src/registry.js";
import {
  AGENT_SCHEMA,
  bindContext,
  connectNats,
  createLogger,
  encode,
  releaseName,
  type AgentRecord,
  type AgentRelease,
  type JsContext,
} from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

const release = (deploymentId: string, version: string): AgentRelease => ({ release: releaseName(version, deploymentId), deploymentId, version });

const entry = (id: string, web?: AgentRelease): AgentRecord => ({
  schema: AGENT_SCHEMA,
  id,
  environment: "prod",
  apps: ["web"],
  host: "h",
  version: "0.1.0",
  labels: {},
  currentReleases: web ? { web: web.release } : {},
  ...(web ? { releases: { web } } : {}),
  startedAt: new Date().toISOString(),
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("a release noted from a deployment's results", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ctx: JsContext;
  const registries: Registry[] = [];
  const d1 = release("d-0000001-aaaaaaaa", "v1");
  const d2 = release("d-0000002-bbbbbbbb", "v2");
  const d3 = release("d-0000003-cccccccc", "v3");

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: "test" });
    await ensureInfrastructure(nc, await jetstreamManager(nc), { replicas: 1, commandsMaxAgeMs: 60_000 });
    ctx = await bindContext(nc);
  });
  afterAll(async () => {
    for (const r of registries) await r.close();
    await nc?.close();
    await server?.cleanup();
  });

  const startRegistry = async (agentLiveMs = 60_000): Promise<Registry> => {
    const r = new Registry(ctx.agents, agentLiveMs, createLogger("test", "silent"));
    registries.push(r);
    await r.start();
    return r;
  };
  /** Writes the agent's entry and waits until the registry has seen that revision. */
  const write = async (r: Registry, record: AgentRecord): Promise<void> => {
    const revision = await ctx.agents.put(record.id, encode(record));
    for (let i = 0; i < 200 && (r.get(record.id)?.revision ?? 0) < revision; i++) await sleep(10);
    expect(r.get(record.id)?.revision).toBe(revision);
  };
  const webOf = (r: Registry, id: string): { current?: string; deploymentId?: string } => {
    const rec = r.get(id)!.record;
    return { current: rec.currentReleases.web, deploymentId: rec.releases?.web?.deploymentId };
  };

  it("shows at once, stands over an entry written before it, and gives way to the entry that shows it", async () => {
    await ctx.agents.put("a1", encode(entry("a1", d1)));
    const r = await startRegistry();
    expect(webOf(r, "a1")).toEqual({ current: d1.release, deploymentId: d1.deploymentId });

    r.noteRelease("a1", "web", d2);
    expect(webOf(r, "a1")).toEqual({ current: d2.release, deploymentId: d2.deploymentId });
    // An entry the agent wrote before its result (a stored heartbeat of the
    // apply), seen after it: the noted release stands.
    await write(r, entry("a1", d1));
    expect(webOf(r, "a1")).toEqual({ current: d2.release, deploymentId: d2.deploymentId });
    // The entry with it: the note is done; a later release of the entry shows as written.
    await write(r, entry("a1", d2));
    await write(r, entry("a1", d3));
    expect(webOf(r, "a1")).toEqual({ current: d3.release, deploymentId: d3.deploymentId });
  });

  it("never replaces a later release the entry shows, and ends after agentLiveMs whatever the entry says", async () => {
    await ctx.agents.put("a2", encode(entry("a2", d3)));
    await ctx.agents.put("a3", encode(entry("a3", d1)));
    const r = await startRegistry(300);
    r.noteRelease("a2", "web", d2);
    expect(webOf(r, "a2").deploymentId).toBe(d3.deploymentId);

    r.noteRelease("a3", "web", d2);
    expect(webOf(r, "a3").deploymentId).toBe(d2.deploymentId);
    await sleep(400);
    // The agent's own word, once the note is older than agentLiveMs (say, the
    // release was switched back by hand and the agent restarted).
    await write(r, entry("a3", d1));
    expect(webOf(r, "a3")).toEqual({ current: d1.release, deploymentId: d1.deploymentId });
  });

  it("an entry without the release's details that names it ends the note", async () => {
    await ctx.agents.put("a4", encode(entry("a4", d1)));
    const r = await startRegistry();
    r.noteRelease("a4", "web", d2);
    // An agent restarted without its entry's details: it names what is current on disk.
    const restarted = entry("a4");
    restarted.currentReleases = { web: d2.release };
    await write(r, restarted);
    expect(webOf(r, "a4")).toEqual({ current: d2.release, deploymentId: undefined });
  });
});
