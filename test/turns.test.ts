// turns() (services/shared/src/turns.ts): at most n holders, first come
// first served, a turn given back once however often its function is called.
// And where the agent takes its turn when a host process sets
// StartAgentOptions.admit: after the journal's answer to a redelivery, before
// the journal's "started".
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import { commandSubject, createLogger, encode, turns, type DeploymentSpec, type JsContext } from "../services/shared/src/index.js";
import { buildCommand } from "../services/coordinator/src/rollout/publishCommand.js";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { handleCommand, type HandlerDeps } from "../services/agent/src/handleCommand.js";
import { Journal } from "../services/agent/src/journal.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("turns", () => {
  it("lets n hold at once, the next in the order they asked", async () => {
    const take = turns(2);
    const order: number[] = [];
    const held = await Promise.all([take(), take()]);
    const later = [3, 4, 5].map((i) => take().then((done) => (order.push(i), done)));
    await tick();
    expect(order).toEqual([]);
    held[0]();
    held[0](); // a second call gives nothing back
    await tick();
    expect(order).toEqual([3]);
    held[1]();
    await tick();
    expect(order).toEqual([3, 4]);
    (await later[0]!)();
    await tick();
    expect(order).toEqual([3, 4, 5]);
  });
});

const AGENT = "a1";
const spec: DeploymentSpec = {
  id: "d-turns",
  requestId: "r-turns",
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
  targets: [AGENT],
  requestedBy: "",
};

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function delivery(redelivered: boolean): JsMsg {
  return {
    subject: commandSubject(AGENT, spec.id),
    data: encode(buildCommand(spec, AGENT)),
    headers: undefined,
    redelivered,
    time: new Date(),
    working: () => undefined,
    ack: () => undefined,
    term: () => undefined,
  } as unknown as JsMsg;
}

describe("an agent in a process that admits applies in turns", () => {
  it("takes its turn before its journal's start, and gives it back whatever happens next", async () => {
    const dir = await mkdtemp(join(tmpdir(), "turns-"));
    dirs.push(dir);
    const journal = await Journal.open(join(dir, "state"));
    const take = turns(1);
    const asked: (string | undefined)[] = [];
    const deps = {
      // A server that fails every call: the race cannot be run.
      ctx: { js: { publish: () => Promise.reject(new Error("no server")) } } as unknown as JsContext,
      config: loadAgentConfig([], { devMode: true, id: AGENT, environment: "prod", apps: { web: { deploy: "/bin/true" } }, stateDir: join(dir, "state") }),
      journal,
      registration: {} as never,
      log: createLogger("test", "silent"),
      kill: new AbortController().signal,
      closing: AbortSignal.abort(), // no retries: the failed race ends the handler
      admit: async () => {
        asked.push(journal.get(spec.id)?.status);
        return take();
      },
    } satisfies HandlerDeps;
    await expect(handleCommand(deps, delivery(false))).rejects.toThrow();
    // Asked before anything was journaled; the journal then says started.
    expect(asked).toEqual([undefined]);
    expect(journal.get(spec.id)?.status).toBe("started");
    // The turn came back: another can take it at once.
    const again = await Promise.race([take(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
    expect(again).toBeTypeOf("function");
    again!();
    // A redelivery the journal answers does not ask for a turn.
    await handleCommand(deps, delivery(true)).catch(() => undefined);
    expect(asked).toHaveLength(1);
  });
});
