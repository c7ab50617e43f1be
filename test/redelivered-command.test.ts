// A command delivered again after its apply (an ack or in-progress ack that
// reached the server late): the journal answers it, nothing runs, and an
// outcome the stream already acknowledged is not sent again; one it did not
// acknowledge yet is. And where an agent in a process that admits applies in
// turns (StartAgentOptions.admit) takes its turn: after the journal's answer
// to a redelivery, before the journal's "started". The agent's handler runs
// here against its real journal on disk and a fake JetStream that records
// what is published.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import { commandSubject, createLogger, encode, parseEvent, turns, type DeploymentSpec, type EventBody, type JsContext } from "../services/shared/src/index.js";
import { buildCommand } from "../services/coordinator/src/rollout/publishCommand.js";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { handleCommand, inProgressSchedule, type HandlerDeps } from "../services/agent/src/handleCommand.js";
import { Journal } from "../services/agent/src/journal.js";

const AGENT = "a1";
const spec: DeploymentSpec = {
  id: "d-redelivered",
  requestId: "r-redelivered",
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

/** `failing`: every publish fails (and the handler gives up at once: closing). */
async function setup(failing = false): Promise<{ deps: HandlerDeps; journal: Journal; published: string[]; events: EventBody[] }> {
  const dir = await mkdtemp(join(tmpdir(), "redelivered-"));
  dirs.push(dir);
  const journal = await Journal.open(join(dir, "state"));
  const published: string[] = [];
  const events: EventBody[] = [];
  const publish = (subject: string, data: Uint8Array) => {
    if (failing) return Promise.reject(new Error("no server"));
    published.push(subject);
    events.push(parseEvent(data));
    return Promise.resolve({ stream: "DEPLOY_EVENTS", seq: published.length, duplicate: false });
  };
  const config = loadAgentConfig([], { devMode: true, id: AGENT, environment: "prod", apps: { web: { deploy: "/bin/true" } }, stateDir: join(dir, "state") });
  const deps = {
    ctx: { js: { publish } } as unknown as JsContext,
    config,
    journal,
    registration: {} as never,
    log: createLogger("test", "silent"),
    kill: new AbortController().signal,
    closing: failing ? AbortSignal.abort() : new AbortController().signal,
  } satisfies HandlerDeps;
  return { deps, journal, published, events };
}

/** The command as delivered a second time (or the first). */
function redelivery(redelivered = true): { m: JsMsg; acks: () => number } {
  let acks = 0;
  const m = {
    subject: commandSubject(AGENT, spec.id),
    data: encode(buildCommand(spec, AGENT)),
    headers: undefined,
    redelivered,
    time: new Date(),
    working: () => undefined,
    ack: () => void acks++,
    term: () => undefined,
  } as unknown as JsMsg;
  return { m, acks: () => acks };
}

const result = { outcome: "SUCCEEDED" as const, message: "ok", exitCode: 0, durationMs: 5, finishedAt: new Date().toISOString() };

describe("a command delivered again after its apply", () => {
  it("whose outcome the stream acknowledged: acked, nothing run or sent", async () => {
    const { deps, journal, published } = await setup();
    await journal.markStarted(spec.id);
    await journal.markFinished(spec.id, result);
    await journal.markReported(spec.id);
    const { m, acks } = redelivery();
    await handleCommand(deps, m);
    expect(acks()).toBe(1);
    expect(published).toEqual([]);
    expect(journal.get(spec.id)?.status).toBe("finished");
  });

  it("whose outcome was not acknowledged yet: the result sent once, then acked", async () => {
    const { deps, journal, published } = await setup();
    await journal.markStarted(spec.id);
    await journal.markFinished(spec.id, result);
    const { m, acks } = redelivery();
    await handleCommand(deps, m);
    expect(acks()).toBe(1);
    expect(published).toEqual([`deploy.evt.${spec.id}.${AGENT}`]);
    expect(journal.get(spec.id)?.reported).toBe(true);
  });
});

describe("an agent in a process that admits applies in turns", () => {
  it("takes its turn before its journal's start, gives it back whatever happens next, and a redelivery asks for none", async () => {
    const { deps, journal } = await setup(true);
    const take = turns(1);
    const asked: (string | undefined)[] = [];
    const admitted: HandlerDeps = {
      ...deps,
      admit: async () => {
        asked.push(journal.get(spec.id)?.status);
        return take();
      },
    };
    // The race cannot be run (every publish fails): the handler ends there.
    await expect(handleCommand(admitted, redelivery(false).m)).rejects.toThrow();
    // Asked before anything was journaled; the journal then says started.
    expect(asked).toEqual([undefined]);
    expect(journal.get(spec.id)?.status).toBe("started");
    // The turn came back: another can take it at once.
    const again = await Promise.race([take(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
    expect(again).toBeTypeOf("function");
    again!();
    // A redelivery the journal answers does not ask for a turn.
    await handleCommand(admitted, redelivery().m).catch(() => undefined);
    expect(asked).toHaveLength(1);
  });
});

describe("a journal that cannot record the start", () => {
  it("runs nothing: the start the race stored is declined at once with the journal's error, and the command is not acked", async () => {
    const { deps, journal, events } = await setup();
    await journal.close();
    const { m, acks } = redelivery(false);
    await expect(handleCommand(deps, m)).rejects.toThrow(/closed/);
    expect(events.map((e) => e.type)).toEqual(["target.started", "target.declined"]);
    const declined = events[1] as Extract<EventBody, { type: "target.declined" }>;
    expect(declined.afterStart).toBe(true);
    expect(declined.reason).toMatch(/^could not journal the start: journal .* is closed/);
    expect(acks()).toBe(0);
  });
});

describe("in-progress acks", () => {
  // The server redelivers at ack_wait after its delivery, which is no
  // earlier than the store: each in-progress ack goes out with a margin
  // before that deadline, and no sooner than it must.
  it("go out every ack_wait less its margin, the first counted from the command's store", () => {
    const now = 1_000_000;
    // The default 30 s: every 20 s, 10 s before the deadline.
    expect(inProgressSchedule(30_000, now, now)).toEqual({ firstMs: 20_000, everyMs: 20_000 });
    // Stored 15 s before the handler ran: the first 5 s from now; 25 s before: at once.
    expect(inProgressSchedule(30_000, now - 15_000, now).firstMs).toBe(5_000);
    expect(inProgressSchedule(30_000, now - 25_000, now).firstMs).toBe(0);
    // An agent clock a minute behind the server's: still within one interval of now.
    expect(inProgressSchedule(30_000, now + 60_000, now).firstMs).toBe(20_000);
    // Short ack_waits keep half of it as the margin, long ones a third.
    expect(inProgressSchedule(5_000, now, now).everyMs).toBe(2_500);
    expect(inProgressSchedule(3_000, now, now).everyMs).toBe(1_500);
    expect(inProgressSchedule(120_000, now, now).everyMs).toBe(80_000);
    for (const ackWait of [3_000, 5_000, 20_000, 30_000, 45_000, 120_000]) {
      const { everyMs } = inProgressSchedule(ackWait, now, now);
      expect(ackWait - everyMs).toBeGreaterThanOrEqual(Math.min(ackWait / 3, 10_000));
    }
  });
});
