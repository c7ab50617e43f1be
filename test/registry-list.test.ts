// Registry.list by environment and app answers from its index: the same
// agents, in the same order, as a look at every agent, however entries
// change their apps or environment, or go.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureInfrastructure } from "../services/coordinator/src/infrastructure.js";
import { Registry } from "../services/coordinator/src/registry.js";
import { AGENT_SCHEMA, bindContext, connectNats, createLogger, encode, type AgentRecord, type JsContext } from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { until } from "./helpers/wait.js";

const entry = (id: string, environment: string, apps: string[]): AgentRecord => ({
  schema: AGENT_SCHEMA,
  id,
  environment,
  apps,
  host: "h",
  version: "0.1.0",
  labels: {},
  currentReleases: {},
  startedAt: new Date().toISOString(),
});

describe("Registry.list", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let ctx: JsContext;
  let r: Registry;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: "test" });
    await ensureInfrastructure(nc, await jetstreamManager(nc), { replicas: 1, commandsMaxAgeMs: 60_000 });
    ctx = await bindContext(nc);
    r = new Registry(ctx.agents, 60_000, createLogger("test", "silent"));
    await r.start();
  });
  afterAll(async () => {
    await r?.close();
    await nc?.close();
    await server?.cleanup();
  });

  /** Writes the entry and waits until the registry has seen that revision. */
  const write = async (record: AgentRecord): Promise<void> => {
    const revision = await ctx.agents.put(record.id, encode(record));
    await until(`registry sees ${record.id} at revision ${revision}`, () => Promise.resolve((r.get(record.id)?.revision ?? 0) >= revision), 2000, 10);
  };
  const ids = (filter: { app?: string; environment?: string }): string[] => r.list(filter).map((v) => v.record.id);
  /** What a look at every agent finds. */
  const scanned = (environment: string, app: string): string[] =>
    r
      .list()
      .filter((v) => v.record.environment === environment && v.record.apps.includes(app))
      .map((v) => v.record.id);

  it("finds by environment and app what a look at every agent finds, as entries change and go", async () => {
    // Written out of order: the answer is sorted by id.
    await write(entry("b-2", "prod", ["web", "api"]));
    await write(entry("a-1", "prod", ["web"]));
    await write(entry("c-3", "staging", ["web"]));
    await write(entry("d-4", "prod", ["api"]));
    const pairs = [
      ["prod", "web"],
      ["prod", "api"],
      ["staging", "web"],
      ["staging", "api"],
      ["dev", "web"],
    ] as const;
    const check = (): void => {
      for (const [environment, app] of pairs) expect(ids({ environment, app }), `${environment}/${app}`).toEqual(scanned(environment, app));
    };
    check();
    expect(ids({ environment: "prod", app: "web" })).toEqual(["a-1", "b-2"]);
    expect(ids({ environment: "prod", app: "api" })).toEqual(["b-2", "d-4"]);
    expect(ids({ environment: "staging", app: "api" })).toEqual([]);

    // b-2 stops serving web; a-1 moves to staging; d-4 serves web too.
    await write(entry("b-2", "prod", ["api"]));
    await write(entry("a-1", "staging", ["web", "api"]));
    await write(entry("d-4", "prod", ["api", "web"]));
    check();
    expect(ids({ environment: "prod", app: "web" })).toEqual(["d-4"]);
    expect(ids({ environment: "staging", app: "web" })).toEqual(["a-1", "c-3"]);
    expect(ids({ environment: "staging", app: "api" })).toEqual(["a-1"]);

    // An entry deleted is gone from every pair it served.
    await ctx.agents.delete("a-1");
    await until("registry forgets a-1", () => Promise.resolve(r.get("a-1") === undefined), 2000, 10);
    check();
    expect(ids({ environment: "staging", app: "web" })).toEqual(["c-3"]);
    expect(ids({ environment: "staging", app: "api" })).toEqual([]);
    // Partial filters still look at every agent.
    expect(ids({ environment: "prod" })).toEqual(["b-2", "d-4"]);
    expect(ids({ app: "web" })).toEqual(["c-3", "d-4"]);
  });
});
