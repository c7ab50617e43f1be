// A real local stack for end-to-end tests: a nats-server (random port, temp
// store), coordinator and agent processes started from the build (dist/),
// each killable with real signals and restartable with the same identity and
// state. Every agent's deploy executable records each run in a file.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChildProc } from "../../scripts/lib/childProc.js";
import { AGENT_MAIN, COORDINATOR_MAIN, ROOT } from "../../scripts/lib/paths.js";
import { DeployClient } from "./client.js";
import { freePort, startNatsServer, type NatsServerHandle } from "./nats-server.js";

const RECORD_SCRIPT = join(ROOT, "test/fixtures/deploy/record.sh");

/** A node service started from dist/ (LOG_LEVEL debug unless env says otherwise); see scripts/lib/childProc.ts. */
export class Proc extends ChildProc {
  constructor(name: string, file: string, env: Record<string, string>) {
    // Tests read the whole log (start-up lines included): keep plenty.
    super(name, process.execPath, [file], { env: { LOG_LEVEL: "debug", DEPLOY_VERIFY_COUNTS: "1", ...env }, maxLogChars: 32 * 1024 * 1024 });
  }

  start(): void {
    this.spawn();
  }

  /** The exit code of the current (last) instance, once it is gone. */
  exited(): Promise<number | null> {
    return this.waitForExit();
  }
}

export interface AgentOptions {
  environment?: string;
  apps?: Record<string, { deploy: string; user?: string; env?: Record<string, string> }>;
  env?: Record<string, string>;
}

export interface StackOptions {
  /** Agent ids started at once (default a1, a2, a3). */
  agents?: string[];
  app?: string;
  environment?: string;
  coordinatorEnv?: Record<string, string>;
  agentEnv?: Record<string, string>;
  /** Start a coordinator (default true). */
  coordinator?: boolean;
  /** nats-server configuration (e.g. the authorization block of deploy/nats/auth). */
  natsConfigText?: string;
}

export class Stack {
  readonly coordinators: Proc[] = [];
  readonly agents = new Map<string, Proc>();
  #clients: DeployClient[] = [];
  grpcPort = 0;

  private constructor(
    readonly nats: NatsServerHandle,
    readonly dir: string,
    readonly app: string,
    readonly environment: string,
    private readonly opts: StackOptions,
  ) {}

  static async start(opts: StackOptions = {}): Promise<Stack> {
    if (!existsSync(COORDINATOR_MAIN) || !existsSync(AGENT_MAIN)) throw new Error("dist/ is missing: run `npm run build` first");
    const dir = await mkdtemp(join(tmpdir(), "deploy-stack-"));
    await mkdir(join(dir, "records"));
    await mkdir(join(dir, "control"));
    const nats = await startNatsServer(opts.natsConfigText === undefined ? {} : { configText: opts.natsConfigText });
    const stack = new Stack(nats, dir, opts.app ?? "web", opts.environment ?? "prod", opts);
    try {
      if (opts.coordinator !== false) await stack.startCoordinator();
      await Promise.all((opts.agents ?? ["a1", "a2", "a3"]).map((id) => stack.startAgent(id)));
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  get address(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  /** A client of the first coordinator's gRPC port; closed by stop(). */
  client(address = this.address): DeployClient {
    const c = new DeployClient(address);
    this.#clients.push(c);
    return c;
  }

  async startCoordinator(env: Record<string, string> = {}): Promise<Proc> {
    const first = this.grpcPort === 0;
    // A port found free may be taken before the coordinator binds it (an
    // outgoing connection of a test running beside this one gets it as its
    // local port: a full run saw EADDRINUSE once): another port, then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      if (first) this.grpcPort = port;
      const proc = new Proc(`coordinator-${this.coordinators.length + 1}`, COORDINATOR_MAIN, {
        NATS_URL: this.nats.url,
        // Development mode unless a test says otherwise (the security tests do).
        DEPLOY_DEV_MODE: "1",
        DEPLOY_GRPC_LISTEN: `127.0.0.1:${port}`,
        DEPLOY_AGENT_LIVE_MS: "3000",
        DEPLOY_SWEEP_INTERVAL_MS: "250",
        DEPLOY_APPLY_TIMEOUT_GRACE_MS: "2000",
        ...this.opts.coordinatorEnv,
        ...env,
      });
      proc.start();
      try {
        await proc.waitForLog("coordinator running");
      } catch (err) {
        if (attempt < 3 && !proc.running && proc.logs().includes(`EADDRINUSE: address already in use 127.0.0.1:${port}`)) continue;
        throw err;
      }
      this.coordinators.push(proc);
      return proc;
    }
  }

  /** Port of the n-th coordinator (they each listen on their own port). */
  coordinatorAddress(proc: Proc): string {
    const m = /"listen":"([^"]+)"/.exec(proc.logs());
    if (!m) throw new Error(`${proc.name} has not logged its address`);
    return m[1]!;
  }

  async startAgent(id: string, o: AgentOptions = {}): Promise<Proc> {
    const existing = this.agents.get(id);
    if (existing?.running) throw new Error(`agent ${id} is running`);
    // A restart keeps the agent's environment unless new env is given.
    const proc = existing && o.env === undefined ? existing : new Proc(`agent-${id}`, AGENT_MAIN, {
      NATS_URL: this.nats.url,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_AGENT_ID: id,
      DEPLOY_ENVIRONMENT: o.environment ?? this.environment,
      DEPLOY_AGENT_APPS: JSON.stringify(o.apps ?? { [this.app]: { deploy: await this.#wrapper() } }),
      DEPLOY_AGENT_STATE_DIR: join(this.dir, "state", id),
      DEPLOY_AGENT_ROOT: this.rootOf(id),
      DEPLOY_AGENT_HEARTBEAT_MS: "500",
      DEPLOY_AGENT_ACK_WAIT_MS: "5000",
      DEPLOY_AGENT_SHUTDOWN_GRACE_MS: "5000",
      ...this.opts.agentEnv,
      ...o.env,
    });
    proc.start();
    await proc.waitForLog("agent running");
    this.agents.set(id, proc);
    return proc;
  }

  /** The deploy executable: record.sh with this stack's record and control dirs. */
  async #wrapper(): Promise<string> {
    const file = join(this.dir, "deploy.sh");
    if (!existsSync(file)) {
      await writeFile(
        file,
        `#!/usr/bin/env bash\nexport RECORD_DIR=${JSON.stringify(join(this.dir, "records"))}\nexport CONTROL_DIR=${JSON.stringify(join(this.dir, "control"))}\nexec ${JSON.stringify(RECORD_SCRIPT)}\n`,
        { mode: 0o755 },
      );
    }
    return file;
  }

  /** Where agent `id` keeps its releases (<root>/<app>/releases, <root>/<app>/current). */
  rootOf(id: string): string {
    return join(this.dir, "root", id);
  }

  agent(id: string): Proc {
    const p = this.agents.get(id);
    if (!p) throw new Error(`no agent ${id}`);
    return p;
  }

  /** Steers agent `id`'s deploy executable: "fail", "hang", or a sleep in seconds. */
  async control(id: string, what: "fail" | "hang" | { sleep: number }, on = true): Promise<void> {
    const name = typeof what === "string" ? `${id}.${what}` : `${id}.sleep`;
    const file = join(this.dir, "control", name);
    if (!on) return rm(file, { force: true });
    await writeFile(file, typeof what === "string" ? "1" : String(what.sleep));
  }

  /** Every execution agent `id`'s deploy executable started, in order. */
  async runs(id: string): Promise<{ phase: "start" | "end"; at: number; deploymentId: string; agentId: string; rest: string }[]> {
    const text = await readFile(join(this.dir, "records", `${id}.log`), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [phase, at, deploymentId, agentId, rest] = l.split(" ");
        return { phase: phase as "start" | "end", at: Number(at), deploymentId: deploymentId!, agentId: agentId!, rest: rest ?? "" };
      });
  }

  /** How many times agent `id` started applying `deploymentId`. */
  async startsOf(id: string, deploymentId: string): Promise<number> {
    return (await this.runs(id)).filter((r) => r.phase === "start" && r.deploymentId === deploymentId).length;
  }

  async stop(): Promise<void> {
    for (const c of this.#clients) c.close();
    await Promise.all([...this.agents.values(), ...this.coordinators].map((p) => p.kill("SIGKILL")));
    await this.nats.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}
