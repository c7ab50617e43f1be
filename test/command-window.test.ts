// The coordinator's command publishes (rollout/commands.ts) go out through a
// window: at most COMMANDS_IN_FLIGHT await their acknowledgement at once, so
// a dispatch of thousands does not leave the last ones waiting at the server
// past the publish timeout. The server here is a fake that acknowledges on
// demand and records how many publishes it held at once.
import { describe, expect, it } from "vitest";
import type { DeploymentSpec, JsContext } from "../services/shared/src/index.js";
import { createLogger } from "../services/shared/src/index.js";
import { COMMANDS_IN_FLIGHT, CommandPublisher } from "../services/coordinator/src/rollout/commands.js";

const spec = (targets: string[]): DeploymentSpec => ({
  id: "d-window",
  requestId: "r-window",
  requestHash: "h",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  strategy: { maxConcurrency: targets.length, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
  targets,
  requestedBy: "",
});

/** A server that holds every publish until `settle` answers it (an error for the subjects in `failing`). */
function fakeServer(failing: Set<string> = new Set()) {
  const held: { subject: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  let maxHeld = 0;
  const subjects: string[] = [];
  const publish = (subject: string) =>
    new Promise((resolve, reject) => {
      subjects.push(subject);
      held.push({ subject, resolve: () => resolve({ duplicate: false, seq: subjects.length, stream: "DEPLOY_COMMANDS" }), reject });
      maxHeld = Math.max(maxHeld, held.length);
    });
  const ctx = { js: { publish } } as unknown as Pick<JsContext, "js">;
  /** Answers what the server holds now, oldest first; resolves once the publisher has sent what it could. */
  const settle = async (): Promise<number> => {
    const now = held.splice(0);
    for (const h of now) {
      if ([...failing].some((f) => h.subject.includes(f))) h.reject(new Error("timeout"));
      else h.resolve();
    }
    await new Promise((r) => setImmediate(r));
    return now.length;
  };
  return { ctx, settle, maxHeld: () => maxHeld, subjects };
}

const log = createLogger("test", "silent");
const agents = (n: number): string[] => Array.from({ length: n }, (_, i) => `a${String(i).padStart(5, "0")}`);

describe("command publishes", () => {
  it(`hold at most ${COMMANDS_IN_FLIGHT} at the server and publish every one once`, async () => {
    const server = fakeServer();
    const publisher = new CommandPublisher(server.ctx, { agentLiveMs: 15_000 });
    const targets = agents(1000);
    const s = spec(targets);
    const all = Promise.all(targets.map((a) => publisher.publish(s, a, log)));
    await new Promise((r) => setImmediate(r));
    let rounds = 0;
    while ((await server.settle()) > 0) rounds++;
    await all;
    expect(server.maxHeld()).toBe(COMMANDS_IN_FLIGHT);
    expect(rounds).toBe(Math.ceil(1000 / COMMANDS_IN_FLIGHT));
    expect(server.subjects).toHaveLength(1000);
    expect(new Set(server.subjects).size).toBe(1000);
  });

  it("gives a failed publish's slot back, and the next pass publishes only what failed", async () => {
    // The whole first window fails: were a failed publish's turn kept, nothing more would be sent.
    const targets = agents(400);
    const failed = targets.slice(0, COMMANDS_IN_FLIGHT);
    const failing = new Set(failed);
    const server = fakeServer(failing);
    const publisher = new CommandPublisher(server.ctx, { agentLiveMs: 15_000 });
    const s = spec(targets);
    const all = Promise.allSettled(targets.map((a) => publisher.publish(s, a, log)));
    await new Promise((r) => setImmediate(r));
    while ((await server.settle()) > 0);
    expect(server.subjects).toHaveLength(400);
    const outcomes = await all;
    expect(outcomes.filter((o) => o.status === "rejected")).toHaveLength(COMMANDS_IN_FLIGHT);

    // A later reconcile: the failed ones again, nothing else.
    failing.clear();
    const record = { spec: s, state: "RUNNING", targets: Object.fromEntries(targets.map((a) => [a, { state: "DISPATCHED" }])) };
    const retry = publisher.publishPending(record as never, log);
    await new Promise((r) => setImmediate(r));
    while ((await server.settle()) > 0);
    await retry;
    expect(server.subjects.slice(400).map((x) => x.split(".").find((p) => p.startsWith("a0")))).toEqual(failed);
  });

  it("forgets a deployment's published commands when told (the sweep, once it is no longer active)", async () => {
    const server = fakeServer();
    const publisher = new CommandPublisher(server.ctx, { agentLiveMs: 15_000 });
    const s = spec(agents(2));
    const sent = Promise.all(s.targets.map((a) => publisher.publish(s, a, log)));
    await new Promise((r) => setImmediate(r));
    await server.settle();
    await sent;
    expect([...publisher.deployments()]).toEqual([s.id]);
    publisher.forget(s.id);
    expect([...publisher.deployments()]).toEqual([]);
  });
});
