// nats-server for tests and scripts, bound to 127.0.0.1 only: find the
// binary, pick free loopback ports, write a config, start and wait for
// "Server is ready", stop / SIGKILL / restart with the same port and store
// dir. Modelled on nats.js's nst/src/launcher.ts. Shared by test/helpers,
// scripts/bench, scripts/chaos, scripts/cluster and scripts/demo.ts.
import { execFileSync } from "node:child_process";
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { ChildProc } from "./childProc.js";
import { toolPath } from "./tools.js";

const HOST = "127.0.0.1";
const READY_LINE = "Server is ready";
const PORT_IN_USE = /address already in use/i;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * NATS_SERVER_BIN, else the pinned nats-server that scripts/tools.sh builds
 * (never whatever is on PATH: Debian's is 2.9.10, older than our minimum).
 */
export function findNatsServerBinary(): string {
  const fromEnv = process.env["NATS_SERVER_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!isExecutable(fromEnv)) throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const pinned = toolPath("nats-server");
  if (!isExecutable(pinned)) throw new Error(`nats-server not found at ${pinned}: run bash scripts/tools.sh`);
  return pinned;
}

/** `nats-server --version`, or "unknown". */
export function natsServerVersion(): string {
  try {
    return execFileSync(findNatsServerBinary(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/**
 * A currently free TCP port on 127.0.0.1, below the kernel's ephemeral range
 * (ip_local_port_range, 32768-60999 by default), where outgoing connections
 * take their local ports. A port from that range, given back and listened
 * on again later (a coordinator or nats-server restarted on its port, as
 * the tests and the fault suite do), can meanwhile become the local port of
 * another process's connection, and the restart fails with EADDRINUSE: seen
 * once for a coordinator's gRPC port in a full run. Below the range only an
 * explicit bind can take it. Falls back to a port the OS picks when that
 * range is too small or taken.
 */
export async function freePort(): Promise<number> {
  const [low, high] = [FIXED_PORTS_FROM, ephemeralLow() - 1];
  if (high - low >= 1000) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if ((await listenOn(port).catch(() => undefined)) !== undefined) return port;
    }
  }
  return await listenOn(0);
}

/** Below this, ports are left to the machine's own services. */
const FIXED_PORTS_FROM = 10_000;

/** The first port of the kernel's ephemeral range (Linux), or 32768. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Listens on `port` (0: one the OS picks) on 127.0.0.1, closes, and resolves with the port; rejects when it is taken. */
function listenOn(port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ host: HOST, port, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error(`unexpected server address: ${String(addr)}`));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** `count` distinct free ports (freePort() twice in a row may answer the same one). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export interface NatsConfig {
  /** server_name: required for JetStream clustering. */
  serverName?: string;
  /** Client port on 127.0.0.1. */
  port: number;
  /** JetStream store dir (JetStream is always on). */
  storeDir: string;
  /** HTTP monitoring port on 127.0.0.1 (/healthz, /jsz). */
  monitorPort?: number;
  /** A cluster block: its route port on 127.0.0.1 and the route ports of its peers; `extra`: lines inside the block (route TLS). */
  cluster?: { name: string; port: number; routes: number[]; noAdvertise?: boolean; extra?: string };
  /** max_payload in bytes (the server's default, 1 MiB, when absent). */
  maxPayload?: number;
  /**
   * `sync_interval: always`: fsync every JetStream write before it is
   * acknowledged, the production setting (deploy/nats/nats-server.prod.conf).
   * Default true; pass false only to measure what it costs.
   */
  syncAlways?: boolean;
}

/**
 * A nats-server config file on loopback addresses only, e.g.
 *
 *   server_name: n1
 *   listen: 127.0.0.1:<client port>
 *   http: 127.0.0.1:<monitor port>
 *   jetstream {
 *     store_dir: "<dir>"
 *     sync_interval: always
 *   }
 *   cluster {
 *     name: deploy-local
 *     listen: 127.0.0.1:<route port>
 *     routes: [
 *       nats-route://127.0.0.1:<peer route port>
 *     ]
 *   }
 */
export function natsConfig(c: NatsConfig): string {
  const lines: string[] = [];
  if (c.serverName !== undefined) lines.push(`server_name: ${c.serverName}`);
  lines.push(`listen: ${HOST}:${c.port}`);
  if (c.maxPayload !== undefined) lines.push(`max_payload: ${c.maxPayload}`);
  if (c.monitorPort !== undefined) lines.push(`http: ${HOST}:${c.monitorPort}`);
  lines.push("jetstream {", `  store_dir: ${JSON.stringify(c.storeDir)}`);
  if (c.syncAlways ?? true) lines.push("  sync_interval: always");
  lines.push("}");
  if (c.cluster) {
    lines.push("cluster {", `  name: ${c.cluster.name}`, `  listen: ${HOST}:${c.cluster.port}`);
    if (c.cluster.noAdvertise) lines.push("  no_advertise: true");
    lines.push("  routes: [", ...c.cluster.routes.map((p) => `    nats-route://${HOST}:${p}`), "  ]");
    if (c.cluster.extra) lines.push(c.cluster.extra.trimEnd());
    lines.push("}");
  }
  lines.push("");
  return lines.join("\n");
}

export class PortInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortInUseError";
  }
}

export interface NatsServerProcOptions {
  /** Name in messages and logs (default "nats-server"). */
  name?: string;
  /** The binary (default findNatsServerBinary()). */
  bin?: string;
  /** Own process group (see ChildProcOptions.detached). */
  detached?: boolean;
  /** start()'s default wait for "Server is ready" (default 10 s). */
  readyTimeoutMs?: number;
  /** stop()'s default wait between SIGTERM and SIGKILL (default 5 s). */
  graceMs?: number;
  /** Output kept, in characters (default 256 KiB). */
  maxLogChars?: number;
}

/** A nats-server listening on 127.0.0.1:`port`, run with `args`; each start() uses the same args (same port and store dir). */
export class NatsServer {
  readonly proc: ChildProc;
  /** "nats://127.0.0.1:<port>" */
  readonly url: string;
  readonly #readyTimeoutMs: number;

  constructor(
    readonly port: number,
    args: string[],
    opts: NatsServerProcOptions = {},
  ) {
    // The whole environment, as a shell would pass it (a config may refer to variables).
    this.proc = new ChildProc(opts.name ?? "nats-server", opts.bin ?? findNatsServerBinary(), args, {
      inheritEnv: true,
      graceMs: opts.graceMs ?? 5_000,
      detached: opts.detached,
      maxLogChars: opts.maxLogChars,
    });
    this.url = `nats://${HOST}:${port}`;
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  }

  /** pid of the current server process (changes after a restart). */
  get pid(): number {
    return this.proc.pid;
  }
  get running(): boolean {
    return this.proc.running;
  }
  /** Recent server output (stdout + stderr), for diagnostics. */
  logs(): string {
    return this.proc.logs();
  }

  /**
   * Spawns and waits until it logs "Server is ready". Otherwise SIGKILLs it
   * and rejects with its output (PortInUseError if the port was taken).
   */
  async start(timeoutMs = this.#readyTimeoutMs): Promise<void> {
    if (this.running) throw new Error(`${this.proc.name} already running (pid ${this.pid})`);
    const from = this.proc.logLength;
    try {
      await this.proc.startAndWait(READY_LINE, timeoutMs);
    } catch (err) {
      const exited = !this.proc.running;
      await this.proc.kill("SIGKILL"); // resolves once its output is drained
      const { exitCode, signalCode } = this.proc.child;
      const output = this.proc.logsSince(from);
      const msg =
        (exited
          ? `${this.proc.name} exited before it was ready (code ${String(exitCode)}, signal ${String(signalCode)})`
          : `${this.proc.name} not ready within ${timeoutMs} ms`) + `\ncommand: ${this.proc.commandLine}\noutput:\n${output}`;
      if (exited && PORT_IN_USE.test(output)) throw new PortInUseError(`port ${this.port} on ${HOST} is already in use; ${msg}`);
      throw new Error(msg, { cause: err });
    }
  }

  /** SIGTERM, wait for exit (SIGKILL after `graceMs`). No-op if not running. */
  async stop(graceMs?: number): Promise<void> {
    await this.proc.stop(graceMs);
  }

  /** SIGKILL (or `signal`), wait for exit. No-op if not running. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.proc.kill(signal);
  }

  /** Start again with the same port and store dir (stops first if running), wait until ready. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

export interface NatsServerOptions extends Omit<NatsServerProcOptions, "bin"> {
  /** Client port; a free one is picked when omitted. */
  port?: number;
  /** JetStream store dir; a fresh temp dir is created (and removed by cleanup) when omitted. */
  storeDir?: string;
  /** Appended to the command line after the helper's own flags. */
  extraArgs?: string[];
  /** Written to a temp .conf and passed with -c (command-line flags take precedence). */
  configText?: string;
  /** Prefix of the temp dir under os.tmpdir() (default "nats-"). */
  tempPrefix?: string;
  /** `sync_interval: always` when no configText is given (default true, as in production). */
  syncAlways?: boolean;
}

export interface NatsServerHandle {
  /** "nats://127.0.0.1:<port>" */
  url: string;
  port: number;
  storeDir: string;
  /** pid of the current server process (changes after restart()). */
  pid: number;
  running: boolean;
  /** SIGTERM, wait for exit (SIGKILL after 5 s). No-op if not running. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit. No-op if not running. */
  kill(): Promise<void>;
  /** Start again with the same port and store dir (stops first if running), wait until ready. */
  restart(): Promise<void>;
  /** Stop if running and remove the temp dirs the helper created. */
  cleanup(): Promise<void>;
  /** Recent server output (stdout + stderr), for diagnostics. */
  logs(): string;
}

/** What startNatsServer() returns: a NatsServer with its store dir and a cleanup(). */
export class StandaloneNatsServer extends NatsServer implements NatsServerHandle {
  readonly #tempDir: string | undefined;

  constructor(port: number, args: string[], readonly storeDir: string, tempDir: string | undefined, opts: NatsServerProcOptions) {
    super(port, args, opts);
    this.#tempDir = tempDir;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    if (this.#tempDir !== undefined) await rm(this.#tempDir, { recursive: true, force: true });
  }
}

/**
 * Start a nats-server with `-a 127.0.0.1 -p <port> -js -sd <storeDir>` and
 * (unless configText or syncAlways: false) `sync_interval: always`, wait
 * until it logs "Server is ready" (10 s), retrying once on a new port if the
 * picked port turned out to be taken.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<StandaloneNatsServer> {
  const bin = findNatsServerBinary();
  // Always a temp dir: the store dir when none is given, and the config file.
  const tempDir = await mkdtemp(join(tmpdir(), opts.tempPrefix ?? "nats-"));
  try {
    const storeDir = opts.storeDir ?? tempDir;
    if (!isAbsolute(storeDir)) throw new Error(`storeDir must be absolute: ${storeDir}`);
    // Without a config of the caller's, one with the production durability
    // setting (`sync_interval: always`; `-js -sd` below set the rest).
    const configText = opts.configText ?? (opts.syncAlways === false ? undefined : `jetstream {\n  sync_interval: always\n}\n`);
    const configArgs: string[] = [];
    if (configText !== undefined) {
      const confPath = join(tempDir, "server.conf");
      await writeFile(confPath, configText, "utf8");
      configArgs.push("-c", confPath);
    }
    const { port: fixedPort, extraArgs, configText: _c, tempPrefix: _t, storeDir: _s, syncAlways: _a, ...procOpts } = opts;
    const attempts = fixedPort === undefined ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      const port = fixedPort ?? (await freePort());
      const args = [...configArgs, "-a", HOST, "-p", String(port), "-js", "-sd", storeDir, ...(extraArgs ?? [])];
      const server = new StandaloneNatsServer(port, args, storeDir, tempDir, { ...procOpts, bin });
      try {
        await server.start();
        return server;
      } catch (err) {
        if (err instanceof PortInUseError && attempt < attempts) continue;
        throw err;
      }
    }
  } catch (err) {
    await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
}
