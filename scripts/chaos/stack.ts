// One run's stack: nats-server(s) with a temp store, one or two coordinators,
// three to five agents, each agent behind its own LinkProxy. Every agent's
// deploy executable appends "start <deployment> <agent> <epoch ms>" (and
// "end ...") to <dir>/records/<agent>.log, so executions can be counted; a
// bundle's hooks do the same (bundle.ts).
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { AGENT_MAIN, COORDINATOR_MAIN, ROOT } from "../lib/paths.js";
import { KILL_HANG_S } from "./bundle.js";
import { ChaosClient } from "./client.js";
import { freePort, NatsNode, NodeService, startNats } from "./procs.js";
import { LinkProxy } from "./proxy.js";

export { ROOT };

export const APPS = ["web", "api"] as const;
export const ENVIRONMENT = "chaos";
/** Short timeouts so a run takes seconds (see README "Fault suite"). */
export const AGENT_LIVE_MS = 3000;
export const SWEEP_MS = 250;
export const HEARTBEAT_MS = 500;
export const ACK_WAIT_MS = 4000;
export const APPLY_GRACE_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Execution {
  phase: "start" | "end";
  deploymentId: string;
  agentId: string;
  atMs: number;
}

/** The clock-offset preload (compiled next to this file). */
const CLOCK_OFFSET_PRELOAD = join(import.meta.dirname, "clockOffset.js");

/** Environment of a process whose wall clock is `offsetMs` away (clock-offset fault); none for 0. */
function clockOffsetEnv(offsetMs: number | undefined): Record<string, string> {
  if (!offsetMs) return {};
  return { NODE_OPTIONS: `--import=${CLOCK_OFFSET_PRELOAD}`, DEPLOY_CHAOS_CLOCK_OFFSET_MS: String(offsetMs) };
}

export interface StackOptions {
  clustered: boolean;
  coordinators: 1 | 2;
  agents: string[];
  /** An agent that stops itself (SIGSTOP) right after each target it wins (the agent-paused-after-claim fault). */
  stopAfterClaim?: string;
  /** small-max-payload: every nats-server's max_payload. */
  maxPayload?: number;
  /** clock-offset: process name (agent id, coordinator-N) → wall clock offset in ms. */
  clockOffsets?: Record<string, number>;
  /** lost-race-reply: the agent whose proxy drops the replies to its target.started publishes. */
  dropRaceReplies?: string;
  /** agent-kill-before-journal: the agent that kills itself between its first race and its journal record. */
  killBeforeJournal?: string;
}

export class ChaosStack {
  readonly coordinators: NodeService[] = [];
  /** lost-race-reply: each reply the proxy dropped (agent, deployment, when). */
  readonly droppedRaceReplies: { agentId: string; deploymentId: string; atMs: number }[] = [];
  readonly agents = new Map<string, NodeService>();
  readonly proxies = new Map<string, LinkProxy>();
  readonly grpcAddresses: string[] = [];
  #nc: NatsConnection | undefined;

  private constructor(
    readonly dir: string,
    readonly nats: NatsNode[],
    readonly clockOffsets: Record<string, number>,
  ) {}

  get clustered(): boolean {
    return this.nats.length > 1;
  }
  get natsUrls(): string {
    return this.nats.map((n) => n.url).join(",");
  }

  static async start(o: StackOptions): Promise<ChaosStack> {
    const dir = await mkdtemp(join(tmpdir(), "deploy-chaos-"));
    await mkdir(join(dir, "records"));
    await mkdir(join(dir, "control"));
    const nats = await startNats(dir, o.clustered ? 3 : 1, o.maxPayload);
    const stack = new ChaosStack(dir, nats, o.clockOffsets ?? {});
    try {
      if (o.clustered) await stack.#waitJetStream();
      for (let i = 0; i < o.coordinators; i++) await stack.#addCoordinator();
      await stack.#writeDeployScript();
      const faultEnv = (id: string): Record<string, string> => ({
        ...(id === o.stopAfterClaim ? { DEPLOY_AGENT_FAULT_STOP_AFTER_CLAIM: "1" } : {}),
        ...(id === o.killBeforeJournal ? { DEPLOY_AGENT_FAULT_KILL_BEFORE_JOURNAL: "1" } : {}),
      });
      await Promise.all(o.agents.map((id) => stack.#addAgent(id, faultEnv(id), id === o.dropRaceReplies)));
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  /** A cluster answers JetStream calls only once it has a meta leader. */
  async #waitJetStream(): Promise<void> {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        const jsm = await this.jsm();
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > until) throw err;
        await sleep(250);
      }
    }
  }

  /** The suite's own connection (direct, never through a proxy). */
  async conn(): Promise<NatsConnection> {
    if (!this.#nc || this.#nc.isClosed()) {
      this.#nc = await connect({ servers: this.nats.map((n) => n.url), reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 2000 });
    }
    return this.#nc;
  }
  async jsm(): Promise<JetStreamManager> {
    return jetstreamManager(await this.conn(), { timeout: 3000 });
  }

  async #addCoordinator(): Promise<void> {
    // freePort's port can be taken before the coordinator binds it (the
    // other suite process running beside this one: seed 60092's
    // EADDRINUSE): a start refused that way is tried again on another port.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#addCoordinatorOn(await freePort());
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
      }
    }
  }

  async #addCoordinatorOn(port: number): Promise<void> {
    const address = `127.0.0.1:${port}`;
    const name = `coordinator-${this.coordinators.length + 1}`;
    const c = new NodeService(name, COORDINATOR_MAIN, {
      NATS_URL: this.natsUrls,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_GRPC_LISTEN: address,
      DEPLOY_STREAM_REPLICAS: this.clustered ? "3" : "1",
      DEPLOY_AGENT_LIVE_MS: String(AGENT_LIVE_MS),
      DEPLOY_SWEEP_INTERVAL_MS: String(SWEEP_MS),
      DEPLOY_APPLY_TIMEOUT_GRACE_MS: String(APPLY_GRACE_MS),
      DEPLOY_DEFAULT_DELIVERY_TIMEOUT_MS: "4000",
      DEPLOY_DEFAULT_APPLY_TIMEOUT_MS: "6000",
      DEPLOY_NATS_API_TIMEOUT_MS: "2000",
      // Kept target counts checked against a count at every use (services/shared/src/fold.ts).
      DEPLOY_VERIFY_COUNTS: "1",
      ...clockOffsetEnv(this.clockOffsets[name]),
    }, "coordinator running");
    await c.start(30_000);
    this.coordinators.push(c);
    this.grpcAddresses.push(address);
  }

  get deployScript(): string {
    return join(this.dir, "deploy.sh");
  }

  /** Records each execution; steered by <dir>/control/<agent>.{sleep,fail}. */
  async #writeDeployScript(): Promise<void> {
    const rec = JSON.stringify(join(this.dir, "records"));
    const ctl = JSON.stringify(join(this.dir, "control"));
    await writeFile(
      this.deployScript,
      [
        "#!/usr/bin/env bash",
        "set -u",
        `rec=${rec}/"$DEPLOY_AGENT_ID".log`,
        `ctl=${ctl}/"$DEPLOY_AGENT_ID"`,
        'echo "start $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N)" >> "$rec"',
        'echo "applying $DEPLOY_APP $DEPLOY_VERSION"',
        // A deployment cancelled with kill_running hangs until killed (scenario.ts cancelKill).
        `case "$DEPLOY_VERSION" in *-hang) sleep ${KILL_HANG_S} ;; *) sleep "$(cat "$ctl.sleep" 2>/dev/null || echo 0.3)" ;; esac`,
        'if [ -f "$ctl.fail" ]; then echo "end $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N) fail" >> "$rec"; exit 3; fi',
        'echo "end $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N) ok" >> "$rec"',
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
  }

  /** The agent's releases root (DEPLOY_AGENT_ROOT): <root>/<app>/current. */
  rootOf(id: string): string {
    return join(this.dir, "root", id);
  }

  stateDirOf(id: string): string {
    return join(this.dir, "state", id);
  }

  async #addAgent(id: string, env: Record<string, string>, dropRaceReplies: boolean): Promise<void> {
    const drop = dropRaceReplies ? { agentId: id, onDrop: (deploymentId: string) => void this.droppedRaceReplies.push({ agentId: id, deploymentId, atMs: Date.now() }) } : undefined;
    const proxy = new LinkProxy(() => this.nats.filter((n) => n.running).map((n) => n.port), drop);
    await proxy.start();
    this.proxies.set(id, proxy);
    // The bundle's hooks keep the records as deploy.sh does (bundle.ts).
    const hookEnv = { CHAOS_RECORDS: join(this.dir, "records"), CHAOS_CONTROL: join(this.dir, "control") };
    const apps = Object.fromEntries(APPS.map((a) => [a, { deploy: this.deployScript, env: hookEnv }]));
    const agent = new NodeService(`agent-${id}`, AGENT_MAIN, {
      NATS_URL: proxy.url,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_AGENT_ID: id,
      DEPLOY_ENVIRONMENT: ENVIRONMENT,
      DEPLOY_AGENT_APPS: JSON.stringify(apps),
      DEPLOY_AGENT_STATE_DIR: this.stateDirOf(id),
      DEPLOY_AGENT_ROOT: this.rootOf(id),
      DEPLOY_AGENT_HEARTBEAT_MS: String(HEARTBEAT_MS),
      DEPLOY_AGENT_ACK_WAIT_MS: String(ACK_WAIT_MS),
      DEPLOY_AGENT_SHUTDOWN_GRACE_MS: "2000",
      DEPLOY_NATS_API_TIMEOUT_MS: "2000",
      ...clockOffsetEnv(this.clockOffsets[id]),
      ...env,
    }, "agent running");
    this.agents.set(id, agent);
    await agent.start(30_000);
  }

  agent(id: string): NodeService {
    return this.agents.get(id)!;
  }

  async control(agentId: string, o: { sleepS?: number; fail?: boolean }): Promise<void> {
    if (o.sleepS !== undefined) await writeFile(join(this.dir, "control", `${agentId}.sleep`), String(o.sleepS));
    if (o.fail) await writeFile(join(this.dir, "control", `${agentId}.fail`), "1");
    if (o.fail === false) await rm(join(this.dir, "control", `${agentId}.fail`), { force: true });
  }

  client(i = 0): ChaosClient {
    return new ChaosClient(this.grpcAddresses[i % this.grpcAddresses.length]!);
  }

  async executions(agentId: string): Promise<Execution[]> {
    const text = await readFile(join(this.dir, "records", `${agentId}.log`), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [phase, deploymentId, agent, at] = l.split(" ");
        return { phase: phase as "start" | "end", deploymentId: deploymentId!, agentId: agent!, atMs: Number(at) };
      });
  }

  /** The agent's journal records (<stateDir>/journal.jsonl). */
  async journal(agentId: string): Promise<{ op: string; deploymentId: string; at: string; result?: { outcome: string; message: string }; reason?: string }[]> {
    const text = await readFile(join(this.stateDirOf(agentId), "journal.jsonl"), "utf8").catch(() => "");
    const out = [];
    for (const l of text.split("\n")) {
      if (!l.trim()) continue;
      try {
        out.push(JSON.parse(l) as { op: string; deploymentId: string; at: string });
      } catch {
        // a torn last line: the agent ignores it too
      }
    }
    return out;
  }

  /** Restarts whatever is down (after the faults), so the run can settle. */
  async restoreAll(): Promise<void> {
    await Promise.all(this.nats.filter((n) => !n.running).map((n) => n.start()));
    for (const c of this.coordinators) if (!c.running) await c.start(30_000);
    await Promise.all([...this.agents.values()].filter((a) => !a.running).map((a) => a.start(30_000)));
    // An agent that stopped itself after a claim once the faults were over.
    for (const p of [...this.agents.values(), ...this.coordinators]) if (p.running && p.pid > 0) process.kill(p.pid, "SIGCONT");
  }

  async stop(keep = false): Promise<void> {
    if (this.#nc && !this.#nc.isClosed()) await this.#nc.close().catch(() => undefined);
    await Promise.all([...this.agents.values(), ...this.coordinators].map((p) => p.kill("SIGKILL")));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    await Promise.all(this.nats.map((n) => n.kill("SIGKILL")));
    if (!keep) await rm(this.dir, { recursive: true, force: true });
  }
}
