// A child process of the local cluster: spawned in its own process group
// (so a Ctrl-C in the terminal reaches only the launcher, which then stops
// everything in order), output kept in a bounded buffer for diagnostics,
// killable with real signals and restartable with the same command.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

const MAX_LOG_CHARS = 512 * 1024;

/** Every child still alive in this process, SIGKILLed if the launcher exits without stopping them. */
const alive = new Set<ChildProcess>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const c of alive) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

export class ClusterProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log = "";
  /** Called when the process exits while nobody asked it to stop. */
  onUnexpectedExit: ((p: ClusterProcess, code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  #stopping = false;

  constructor(
    readonly name: string,
    readonly file: string,
    readonly args: string[],
    readonly env: Record<string, string>,
  ) {}

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  logs(): string {
    return this.#log;
  }

  tail(lines = 20): string {
    return this.#log.split("\n").slice(-lines).join("\n");
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    installExitHook();
    this.#stopping = false;
    const child = spawn(this.file, this.args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.#child = child;
    alive.add(child);
    const keep = (b: Buffer): void => {
      this.#log += b.toString();
      if (this.#log.length > MAX_LOG_CHARS) this.#log = this.#log.slice(-MAX_LOG_CHARS);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", (err) => keep(Buffer.from(`spawn failed: ${err.message}\n`)));
    this.#exited = new Promise((res) =>
      child.once("close", (code, signal) => {
        alive.delete(child);
        if (!this.#stopping) this.onUnexpectedExit?.(this, code, signal);
        res();
      }),
    );
  }

  /** Resolves once the output contains `text`; rejects if the process exits first or after `timeoutMs`. */
  async waitForLog(text: string, timeoutMs: number, from = 0): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.#log.slice(from).includes(text)) {
      if (!this.running) throw new Error(`${this.name} exited before logging "${text}":\n${this.tail()}`);
      if (Date.now() > until) throw new Error(`${this.name} did not log "${text}" within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** Length of the log so far: pass to waitForLog to wait only for output written after this point. */
  get logLength(): number {
    return this.#log.length;
  }

  /** Sends `signal` (SIGKILL by default) and waits for the exit; a no-op if not running. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running) return;
    this.#stopping = true;
    this.#child!.kill(signal);
    await this.#exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.#stopping = true;
    this.#child!.kill("SIGTERM");
    const timer = setTimeout(() => this.#child?.kill("SIGKILL"), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  exited(): Promise<void> {
    return this.#exited;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** NATS_SERVER_BIN, else nats-server on PATH, else /usr/sbin/nats-server (Debian's package). */
export function findNatsServer(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  if (isExecutable("/usr/sbin/nats-server")) return "/usr/sbin/nats-server";
  throw new Error("nats-server not found: put it on PATH (Debian/Ubuntu: apt-get install nats-server) or set NATS_SERVER_BIN");
}

/** A TCP port on 127.0.0.1 that is free right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", rej);
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        rej(new Error("no port"));
        return;
      }
      srv.close(() => res(addr.port));
    });
  });
}
