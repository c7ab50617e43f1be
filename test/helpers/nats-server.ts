/**
 * Launches a real nats-server (JetStream enabled, bound to 127.0.0.1 only)
 * for a test file. Modelled on nats.js's nst/src/launcher.ts, reduced to
 * what our tests need: start, stop, SIGKILL, restart on the same port and
 * store dir, and cleanup.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";

export interface NatsServerOptions {
  /** Client port; a free one is picked when omitted. */
  port?: number;
  /** JetStream store dir; a fresh temp dir is created (and removed by cleanup) when omitted. */
  storeDir?: string;
  /** Appended to the command line after the helper's own flags. */
  extraArgs?: string[];
  /** Written to a temp .conf and passed with -c (command-line flags take precedence). */
  configText?: string;
}

export interface NatsServerHandle {
  /** "nats://127.0.0.1:<port>" */
  url: string;
  port: number;
  storeDir: string;
  /** pid of the current server process (changes after restart()). */
  pid: number;
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

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const MAX_LOG_CHARS = 256 * 1024;
const READY_LINE = "Server is ready";
const PORT_IN_USE = /address already in use/i;

/** Children still alive; SIGKILLed if the test process exits without cleanup. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** NATS_SERVER_BIN, else `nats-server` on PATH. */
export function findNatsServerBinary(): string {
  const fromEnv = process.env["NATS_SERVER_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!isExecutable(fromEnv)) {
      throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file`);
    }
    return fromEnv;
  }
  const dirs = (process.env["PATH"] ?? "").split(delimiter).filter((d) => d !== "");
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(
    "nats-server binary not found: set NATS_SERVER_BIN or put nats-server on PATH " +
      `(searched: ${dirs.join(delimiter) || "<empty PATH>"})`,
  );
}

/** Ask the OS for a currently free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
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

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

async function waitForExit(child: ChildProcess, timeoutMs?: number): Promise<boolean> {
  if (!isRunning(child)) return true;
  return await new Promise<boolean>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const onExit = (): void => {
      if (timer) clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        child.off("exit", onExit);
        resolve(false);
      }, timeoutMs);
    }
  });
}

class PortInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortInUseError";
  }
}

class Server implements NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  #child: ChildProcess | undefined;
  #log = "";
  readonly #bin: string;
  readonly #args: string[];
  readonly #tempDir: string;

  constructor(bin: string, port: number, storeDir: string, tempDir: string, args: string[]) {
    this.#bin = bin;
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = storeDir;
    this.#tempDir = tempDir;
    this.#args = args;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  logs(): string {
    return this.#log;
  }

  #append(chunk: string): void {
    this.#log += chunk;
    if (this.#log.length > MAX_LOG_CHARS) this.#log = this.#log.slice(-MAX_LOG_CHARS);
  }

  /** Spawn and wait for "Server is ready"; rejects (PortInUseError if the port was taken) otherwise. */
  async start(): Promise<void> {
    if (isRunning(this.#child)) throw new Error(`nats-server already running (pid ${this.pid})`);
    installExitHook();
    const child = spawn(this.#bin, this.#args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    live.add(child);
    child.once("exit", () => live.delete(child));
    child.stdout?.setEncoding("utf8");
    child.stderr?.setEncoding("utf8");

    const cmd = `${this.#bin} ${this.#args.join(" ")}`;

    await new Promise<void>((resolve, reject) => {
      let done = false;
      let seen = "";
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        child.off("close", onClose);
        child.off("error", onError);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: string): void => {
        this.#append(chunk);
        if (!done) {
          seen += chunk;
          if (seen.includes(READY_LINE)) finish();
        }
      };
      // "close" (not "exit"): fires after stdout/stderr are drained, so `seen` has the last lines.
      const onClose = (code: number | null, signal: NodeJS.Signals | null): void => {
        const msg =
          `nats-server exited before it was ready (code ${String(code)}, signal ${String(signal)})\n` +
          `command: ${cmd}\noutput:\n${seen}`;
        finish(
          PORT_IN_USE.test(seen)
            ? new PortInUseError(`port ${this.port} on 127.0.0.1 is already in use; ${msg}`)
            : new Error(msg),
        );
      };
      const onError = (err: Error): void => {
        finish(new Error(`failed to spawn nats-server (${cmd}): ${err.message}`, { cause: err }));
      };
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        finish(
          new Error(
            `nats-server not ready within ${READY_TIMEOUT_MS} ms\ncommand: ${cmd}\noutput:\n${seen}`,
          ),
        );
      }, READY_TIMEOUT_MS);
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("close", onClose);
      child.once("error", onError);
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!isRunning(child)) return;
    child.kill("SIGTERM");
    if (!(await waitForExit(child, STOP_GRACE_MS))) {
      child.kill("SIGKILL");
      await waitForExit(child);
    }
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!isRunning(child)) return;
    child.kill("SIGKILL");
    await waitForExit(child);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await rm(this.#tempDir, { recursive: true, force: true });
  }
}

/**
 * Start a nats-server with `-a 127.0.0.1 -p <port> -js -sd <storeDir>`, wait
 * until it logs "Server is ready" (10 s), retrying once on a new port if the
 * picked port turned out to be taken.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = findNatsServerBinary();
  const tempDir = await mkdtemp(join(tmpdir(), "nats-test-"));
  try {
    const storeDir = opts.storeDir ?? tempDir;
    if (!isAbsolute(storeDir)) throw new Error(`storeDir must be absolute: ${storeDir}`);
    const configArgs: string[] = [];
    if (opts.configText !== undefined) {
      const confPath = join(tempDir, "server.conf");
      await writeFile(confPath, opts.configText, "utf8");
      configArgs.push("-c", confPath);
    }
    const attempts = opts.port === undefined ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const args = [
        ...configArgs,
        "-a",
        "127.0.0.1",
        "-p",
        String(port),
        "-js",
        "-sd",
        storeDir,
        ...(opts.extraArgs ?? []),
      ];
      const server = new Server(bin, port, storeDir, tempDir, args);
      try {
        await server.start();
        return server;
      } catch (err) {
        await server.kill();
        if (err instanceof PortInUseError && attempt < attempts) continue;
        throw err;
      }
    }
  } catch (err) {
    await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
}
