// The fault kinds added with issue 16 (lost-race-reply, poison-event,
// small-max-payload, clock-offset): how a seed draws them, and the two
// that the run drives itself (the poison messages, the oversize create).
// The others are made by the stack: the agent's proxy drops race replies
// (proxy.ts), the nats-servers get max_payload, a process gets a clock
// offset (clockOffset.ts).
import { randomBytes } from "node:crypto";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Rng } from "./prng.js";
import type { Fault, FaultKind, ScenarioPlan } from "./scenario.js";
import type { ChaosStack } from "./stack.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Kinds added with issue 16: drawn as faults added to a run (each with its
 * own share) from a third generator, never replacing the primary, so every
 * seed recorded before plans what it planned, plus these.
 */
export const ADDED_KINDS = ["lost-race-reply", "poison-event", "small-max-payload", "clock-offset"] as const satisfies readonly FaultKind[];
/** Each added kind's share of runs: about 40 of each in 500 runs. */
const ADDED_SHARE = 0.08;
/**
 * The added kinds' generator salt: the first under which none of the seeds
 * the tests pin (1, 1030, 3054 and the smoke seeds 7000-7019) draws one, so
 * those replay exactly (test/chaos-added-kinds.test.ts replays one seed of
 * each added kind instead).
 */
export const ADDED_SALT = 4287;

/**
 * agent-kill-before-journal, added later still: drawn from a generator of
 * its own (so every kind above draws what it drew), with ADDED_SHARE, under
 * the first salt with which none of the seeds the tests pin draws it (1,
 * 1030, 3054, the smoke seeds 7000-7019, test/chaos-added-kinds.test.ts's
 * other seeds); that test replays seed 40075, which draws it.
 */
export const KILL_BEFORE_JOURNAL_SALT = 23;

/** agent-kill-before-journal: one agent kills itself between its first race and that start's journal record, and comes back downMs later. */
export function planKillBeforeJournal(plan: ScenarioPlan, rng: Rng): void {
  if (!rng.chance(ADDED_SHARE)) return;
  const on = rng.pick(plan.agents);
  plan.killBeforeJournal = on;
  plan.faults.push({ kind: "agent-kill-before-journal", on, downMs: rng.int(200, 3000), injected: false });
}

/** small-max-payload: the create too large for the server, and its answer. */
export interface OversizeOutcome {
  requestId: string;
  targets: number;
  /** gRPC status name of the answer (OK if it was created). */
  code: string;
  details: string;
}

/** The added kinds (ADDED_KINDS), each drawn with its own share from their own generator. */
export function planAdded(plan: ScenarioPlan, rng: Rng): void {
  for (const kind of ADDED_KINDS) {
    if (!rng.chance(ADDED_SHARE)) continue;
    switch (kind) {
      case "lost-race-reply": {
        // The agent's proxy drops the server's reply to each target.started
        // it publishes: stored, but the agent never hears so.
        const on = rng.pick(plan.agents);
        plan.dropRaceReplies = on;
        plan.faults.push({ kind, on, injected: false });
        break;
      }
      case "poison-event": {
        // Unreadable messages on D1's coordinator subject and on one
        // agent's subject, through the suite's own (fully privileged)
        // connection, while D1 runs.
        const on = rng.pick(plan.agents);
        const poison = [rng.pick(POISONS), rng.pick(POISONS)];
        plan.faults.push({ kind, on, atMs: rng.int(0, 2500), note: poison.join(","), injected: false });
        break;
      }
      case "small-max-payload": {
        // Every nats-server with a small max_payload; a deployment too large
        // for it (fake agents of another environment) must be refused at
        // creation, and the others run as usual.
        plan.maxPayload = rng.pick(SMALL_MAX_PAYLOADS);
        plan.faults.push({ kind, on: `max_payload ${plan.maxPayload}`, injected: false });
        break;
      }
      case "clock-offset": {
        // A wall clock minutes away from the servers' (a Date.now() shift
        // preloaded into that process only): an agent, a coordinator, or one
        // of each.
        const offsets: Record<string, number> = {};
        const minutes = (): number => (rng.chance(0.5) ? -1 : 1) * rng.int(2, 6) * 60_000;
        const which = rng.int(0, 2);
        if (which !== 1) offsets[rng.pick(plan.agents)] = minutes();
        if (which !== 0) offsets[`coordinator-${rng.int(1, plan.coordinators)}`] = minutes();
        plan.clockOffsets = offsets;
        plan.faults.push({ kind, on: Object.entries(offsets).map(([p, ms]) => `${p} ${ms > 0 ? "+" : ""}${ms / 60_000} min`).join(", "), injected: true });
        break;
      }
    }
  }
}

/** What poison-event publishes: not JSON, JSON of another schema, an event of a type no one knows. */
export const POISONS = ["invalid-json", "wrong-schema", "unknown-type"] as const;

function poisonPayload(kind: (typeof POISONS)[number], deploymentId: string, agentId: string): Uint8Array {
  const text =
    kind === "invalid-json"
      ? `{"schema":"deploy.event.v1","type":"target.started",` // cut short
      : kind === "wrong-schema"
        ? JSON.stringify({ schema: "deploy.event.v0", deploymentId, time: new Date().toISOString(), type: "target.started", agentId, nonce: "poison" })
        : JSON.stringify({ schema: "deploy.event.v1", deploymentId, time: new Date().toISOString(), type: "target.teleported", agentId });
  return new TextEncoder().encode(text);
}
/** small-max-payload's choices, in bytes (docs/fault-suite.md says why not smaller). */
const SMALL_MAX_PAYLOADS = [16 * 1024, 32 * 1024, 64 * 1024];

/** Publishes f's two poisons (f.note: their kinds) on the deployment's coordinator subject and on f.on's, through the suite's own connection. */
export async function publishPoison(stack: ChaosStack, deploymentId: string, f: Fault, note: (m: string) => void): Promise<void> {
  const js = jetstream(await stack.conn(), { timeout: 3000 });
  const kinds = f.note!.split(",") as (typeof POISONS)[number][];
  const subjects = [`deploy.evt.${deploymentId}.coordinator`, `deploy.evt.${deploymentId}.${f.on}`];
  for (let i = 0; i < subjects.length; i++) {
    for (let attempt = 0; ; attempt++) {
      try {
        await js.publish(subjects[i]!, poisonPayload(kinds[i]!, deploymentId, f.on!));
        break;
      } catch (err) {
        if (attempt >= 10) throw err;
        await sleep(300); // a cluster electing a leader
      }
    }
    f.injected = true;
    note(`published ${kinds[i]} on ${subjects[i]}`);
  }
}

/**
 * small-max-payload: a deployment too large for the server (fake agents
 * of another environment, each with a 64-character id) must be refused at
 * creation with RESOURCE_EXHAUSTED naming the limit, and write nothing.
 */
export async function createOversize(stack: ChaosStack, seed: number, maxPayload: number): Promise<OversizeOutcome> {
  // At least 67 bytes per live target in deployment.created (its quoted
  // 64-character id); a quarter more than fits.
  const n = Math.ceil((maxPayload / 64) * 1.25);
  const environment = "chaos-oversize";
  const ids = Array.from({ length: n }, (_, i) => `oversize-${String(i).padStart(5, "0")}-${"x".repeat(64 - 15)}`);
  // Retried: another fault of the run may have NATS down (seed 20261, with nats-kill).
  const put = (): Promise<unknown> =>
    retried(async () => {
      const kv = await new Kvm(await stack.conn()).open("deploy_agents");
      await Promise.all(ids.map((id) => kv.put(id, JSON.stringify({ schema: "deploy.agent.v1", id, environment, apps: ["web"], host: "fake", version: "0", labels: {}, currentReleases: {}, startedAt: new Date().toISOString() }))));
    });
  const requestId = `chaos-${seed}-oversize-${randomBytes(3).toString("hex")}`;
  const req = { requestId, app: "web", environment, changeset: { version: "v-oversize" }, requestedBy: "chaos" };
  let last: OversizeOutcome | undefined;
  for (let attempt = 0; attempt < 10; attempt++) {
    const c = stack.client(attempt);
    try {
      await put();
      // The coordinator's registry follows deploy_agents by a watch: create only once it has them all.
      for (let i = 0; i < 100; i++) {
        const seen = (await c.agents({ environment }).catch(() => ({ agents: [] }))).agents?.length ?? 0;
        if (seen >= n) break;
        await sleep(100);
      }
      await put(); // live again (a 3 s liveness limit)
      try {
        await c.create(req, 10_000);
        return { requestId, targets: n, code: "OK", details: "created" };
      } catch (err) {
        const e = err as ServiceError;
        last = { requestId, targets: n, code: grpcStatus[e.code] ?? String(e.code), details: e.details ?? e.message };
        // A coordinator or NATS down or restarting (another fault): ask again; any other answer is the verdict.
        if (e.code !== grpcStatus.UNAVAILABLE && e.code !== grpcStatus.DEADLINE_EXCEEDED && e.code !== grpcStatus.FAILED_PRECONDITION) return last;
      }
    } finally {
      c.close();
    }
    await sleep(500);
  }
  return last!;
}

async function retried<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(500);
    }
  }
}
