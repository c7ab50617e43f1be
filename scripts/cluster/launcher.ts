// The production topology as local processes: three nats-servers clustered
// on loopback ports, two coordinators (streams and buckets at three
// replicas, NATS_URL naming every node) and three agents, all from dist/.
// Used by `npm run cluster` (scripts/cluster.ts) and test/cluster.test.ts.
//
// With `secure`, it runs as production does: gen-credentials' code writes
// <dir>/credentials (nkeys, TLS, tokens, signing key, bindings), the NATS
// nodes require nkeys and TLS from clients and TLS with a certificate the
// CA signed from each other on their routes, and coordinators and agents
// run in production mode with their generated .env files.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateCredentials, readEnvFile } from "../gen-credentials.js";
import { ChildProc, sleep } from "../lib/childProc.js";
import { freePort } from "../lib/natsServer.js";
import { AGENT_MAIN, COORDINATOR_MAIN, ROOT } from "../lib/paths.js";
import { NatsCluster } from "./natsCluster.js";

/** A coordinator or agent process of the cluster (see clusterProcess()). */
export type ClusterProcess = ChildProc;

/**
 * A node service from dist/ in its own process group (so a Ctrl-C in the
 * terminal reaches only the launcher, which then stops everything in order),
 * its last 512 KiB of output kept for diagnostics.
 */
function clusterProcess(name: string, file: string, env: Record<string, string>): ClusterProcess {
  return new ChildProc(name, process.execPath, [file], { env, detached: true, maxLogChars: 512 * 1024, graceMs: 15_000 });
}

export { ROOT };

const DEFAULT_AGENTS = ["web-1", "web-2", "web-3"];

/** How long a coordinator may keep failing at start (no meta leader yet, peers not caught up) before we give up. */
const COORDINATOR_START_BUDGET_MS = 90_000;

export const SAMPLE_DEPLOY_SCRIPT = `#!/usr/bin/env bash
# The local cluster's deploy executable for app "web": what an agent runs for
# a deployment without a bundle. Prints a few lines, as a real deploy would.
set -euo pipefail
echo "fetching release $DEPLOY_VERSION for $DEPLOY_APP on $DEPLOY_AGENT_ID"
sleep 0.3
echo "restarting"
sleep 0.3
echo "healthy"
`;

export interface LocalClusterOptions {
  /** Where stores, journals, releases and config files go; a temp dir (removed by stop()) when omitted. */
  dir?: string;
  /** Coordinators to start (default 2). */
  coordinators?: number;
  /** Agent ids (default web-1, web-2, web-3). */
  agents?: string[];
  app?: string;
  environment?: string;
  /** The agents' deploy executable for `app` (absolute path); a sample script when omitted. */
  deployScript?: string;
  coordinatorEnv?: Record<string, string>;
  agentEnv?: Record<string, string>;
  /** pino level of coordinators and agents (default info). */
  logLevel?: string;
  /** Called when a process exits while the cluster is meant to be up. */
  onUnexpectedExit?: (p: ClusterProcess, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Production mode with generated credentials (npm run cluster without --dev); default development mode. */
  secure?: boolean;
}

export class LocalCluster {
  readonly coordinators: ClusterProcess[] = [];
  readonly grpcAddresses: string[] = [];
  readonly agents = new Map<string, ClusterProcess>();
  /** Secured: the generated credentials' directory; undefined in development mode. */
  readonly credentials: string | undefined;

  private constructor(
    readonly nats: NatsCluster,
    readonly dir: string,
    readonly app: string,
    readonly environment: string,
    readonly deployScript: string,
    private readonly ownsDir: boolean,
    private readonly opts: LocalClusterOptions,
  ) {
    this.credentials = opts.secure ? join(dir, "credentials") : undefined;
  }

  /** What deployctl needs to reach the coordinators: TLS with the CA and the deployer token when secured. */
  async clientEnv(): Promise<Record<string, string>> {
    if (!this.credentials) return {};
    return { DEPLOY_TLS: "1", DEPLOY_CA: join(this.credentials, "ca.pem"), DEPLOY_TOKEN: (await readFile(join(this.credentials, "deployer.token"), "utf8")).trim() };
  }

  /** gRPC address of coordinator i as a client names it (localhost when secured: the certificate's name). */
  clientAddress(i: number): string {
    const a = this.grpcAddresses[i];
    if (a === undefined) throw new Error(`no coordinator ${i}`);
    return this.credentials ? a.replace(/^127\.0\.0\.1:/, "localhost:") : a;
  }

  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    if (!existsSync(COORDINATOR_MAIN) || !existsSync(AGENT_MAIN)) throw new Error("dist/ is missing: run `npm run build` first");
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "deploy-cluster-")));
    await mkdir(dir, { recursive: true });
    let deployScript = opts.deployScript;
    if (deployScript === undefined) {
      deployScript = join(dir, "deploy-web.sh");
      await writeFile(deployScript, SAMPLE_DEPLOY_SCRIPT, { mode: 0o755 });
    }
    const app = opts.app ?? "web";
    const environment = opts.environment ?? "local";
    let nats: NatsCluster;
    try {
      let secured: { extraConfig: string; clusterExtra: string } | undefined;
      if (opts.secure) {
        // Each agent bound to the cluster's app and environment; an admin nkey for the nats CLI.
        const out = join(dir, "credentials");
        const agents = (opts.agents ?? DEFAULT_AGENTS).map((id) => ({ id, environment, apps: [app] }));
        generateCredentials({ out, agents, coordinators: opts.coordinators ?? 2, admin: true, tlsHosts: ["localhost", "127.0.0.1"] });
        secured = {
          extraConfig: [await readFile(join(out, "authorization.conf"), "utf8"), await readFile(join(out, "tls.conf"), "utf8")].join("\n"),
          clusterExtra: await readFile(join(out, "route-tls.conf"), "utf8"),
        };
      }
      nats = await NatsCluster.start(join(dir, "nats"), 3, secured ?? {});
    } catch (err) {
      if (ownsDir) await rm(dir, { recursive: true, force: true });
      throw err;
    }
    for (const n of nats.nodes) n.proc.onUnexpectedExit = opts.onUnexpectedExit;
    const cluster = new LocalCluster(nats, dir, app, environment, deployScript, ownsDir, opts);
    try {
      // One after the other: the first creates the R3 streams and buckets,
      // the second finds them.
      for (let i = 0; i < (opts.coordinators ?? 2); i++) await cluster.startCoordinator();
      await Promise.all((opts.agents ?? DEFAULT_AGENTS).map((id) => cluster.startAgent(id)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /**
   * Starts one more coordinator on a fresh loopback port and waits for
   * "coordinator running". A coordinator exits at start when JetStream cannot
   * create or update the R3 streams yet (no meta leader, or a peer not caught
   * up after a restart); it is started again until COORDINATOR_START_BUDGET_MS.
   */
  async startCoordinator(): Promise<ClusterProcess> {
    const index = this.coordinators.length + 1;
    const address = `127.0.0.1:${await freePort()}`;
    const proc = clusterProcess(`coordinator-${index}`, COORDINATOR_MAIN, {
      NATS_URL: this.nats.url,
      ...this.#modeEnv(`coordinator-${index}.env`),
      DEPLOY_GRPC_LISTEN: address,
      DEPLOY_STREAM_REPLICAS: "3",
      LOG_LEVEL: this.opts.logLevel ?? "info",
      ...this.opts.coordinatorEnv,
    });
    await startWithRetry(proc, "coordinator running", COORDINATOR_START_BUDGET_MS);
    proc.onUnexpectedExit = this.opts.onUnexpectedExit;
    this.coordinators.push(proc);
    this.grpcAddresses.push(address);
    return proc;
  }

  /** Starts coordinator `index` (0-based) again after it was killed: same gRPC address. */
  async restartCoordinator(index: number): Promise<void> {
    const proc = this.coordinators[index];
    if (!proc) throw new Error(`no coordinator ${index}`);
    if (proc.running) throw new Error(`${proc.name} is running`);
    await startWithRetry(proc, "coordinator running", COORDINATOR_START_BUDGET_MS);
  }

  async startAgent(id: string): Promise<ClusterProcess> {
    const existing = this.agents.get(id);
    if (existing?.running) throw new Error(`agent ${id} is running`);
    const proc =
      existing ??
      clusterProcess(`agent-${id}`, AGENT_MAIN, {
        NATS_URL: this.nats.url,
        ...this.#modeEnv(`agent-${id}.env`),
        DEPLOY_AGENT_ID: id,
        DEPLOY_ENVIRONMENT: this.environment,
        DEPLOY_AGENT_APPS: JSON.stringify({ [this.app]: { deploy: this.deployScript } }),
        DEPLOY_AGENT_STATE_DIR: join(this.dir, "agents", id, "state"),
        DEPLOY_AGENT_ROOT: this.rootOf(id),
        DEPLOY_AGENT_HEARTBEAT_MS: "1000",
        LOG_LEVEL: this.opts.logLevel ?? "info",
        ...this.opts.agentEnv,
      });
    await proc.startAndWait("agent running", 60_000);
    proc.onUnexpectedExit = this.opts.onUnexpectedExit;
    this.agents.set(id, proc);
    return proc;
  }

  /** Development mode, or (secured) the process's generated environment file. */
  #modeEnv(envFile: string): Record<string, string> {
    if (!this.credentials) return { DEPLOY_DEV_MODE: "1" };
    const file = join(this.credentials, envFile);
    if (!existsSync(file)) throw new Error(`no credentials for ${envFile.replace(/\.env$/, "")} in ${this.credentials} (generated for the processes the cluster started with)`);
    return readEnvFile(file);
  }

  /** Where agent `id` keeps its releases. */
  rootOf(id: string): string {
    return join(this.dir, "agents", id, "root");
  }

  /** Agents first (they may be applying), then coordinators, then the NATS nodes; removes a temp dir it made. */
  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((p) => p.stop(20_000)));
    await Promise.all(this.coordinators.map((p) => p.stop(15_000)));
    await this.nats.stop();
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}

async function startWithRetry(proc: ClusterProcess, readyLine: string, budgetMs: number): Promise<void> {
  const until = Date.now() + budgetMs;
  // A failed start is expected here, not news for onUnexpectedExit.
  const onExit = proc.onUnexpectedExit;
  proc.onUnexpectedExit = undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      await proc.startAndWait(readyLine, Math.max(1000, until - Date.now()));
      proc.onUnexpectedExit = onExit;
      return;
    } catch (err) {
      await proc.kill("SIGKILL");
      if (Date.now() >= until) throw new Error(`${proc.name} did not start after ${attempt} attempt(s)`, { cause: err });
      await sleep(Math.min(1000 * attempt, 3000));
    }
  }
}
