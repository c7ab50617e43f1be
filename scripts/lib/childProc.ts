// A child process of a script or test (a node service, a nats-server):
// spawned with piped output kept in a bounded buffer, restartable with the
// same command, killable with real signals, SIGKILLed if this process exits
// without stopping it. Shared by test/helpers, scripts/bench, scripts/chaos,
// scripts/cluster and scripts/demo.ts.
import { spawn, type ChildProcess } from "node:child_process";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every child still alive in this process; SIGKILLed if it exits without stopping them. */
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

export interface ChildProcOptions {
  /** Added to PATH and HOME of this process (all of process.env with inheritEnv). */
  env?: Record<string, string>;
  /** Start from all of process.env instead of PATH and HOME only. */
  inheritEnv?: boolean;
  /** Own process group: a Ctrl-C in the terminal reaches only this process, which stops the child itself. */
  detached?: boolean;
  /** An IPC channel (see waitForMessage). */
  ipc?: boolean;
  /** Output kept, in characters (default 256 KiB); the oldest chunks go first. */
  maxLogChars?: number;
  /** stop()'s default wait between SIGTERM and SIGKILL (default 10 s). */
  graceMs?: number;
}

export type ExitListener = (p: ChildProc, code: number | null, signal: NodeJS.Signals | null) => void;

export class ChildProc {
  #child: ChildProcess | undefined;
  /** Resolves with the exit code once the current instance is gone and its output drained. */
  #exited: Promise<number | null> = Promise.resolve(null);
  #stopping = false;
  #chunks: string[] = [];
  #chars = 0;
  /** Characters dropped from the front of the buffer so far. */
  #dropped = 0;
  #joined: string | undefined = "";
  /** Woken on new output and on exit (waitForLog). */
  #wake = new Set<() => void>();
  readonly #opts: ChildProcOptions;
  /** Called when the process exits while nobody asked it to (kill() and stop() do). */
  onUnexpectedExit: ExitListener | undefined;

  constructor(
    readonly name: string,
    readonly command: string,
    readonly args: string[],
    opts: ChildProcOptions = {},
  ) {
    this.#opts = opts;
  }

  /** The current (last) process instance; throws before the first spawn(). */
  get child(): ChildProcess {
    if (!this.#child) throw new Error(`${this.name} was never started`);
    return this.#child;
  }
  get pid(): number {
    return this.#child?.pid ?? -1;
  }
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }
  /** "<command> <args…>", for messages. */
  get commandLine(): string {
    return [this.command, ...this.args].join(" ");
  }

  /** Output kept so far (stdout and stderr interleaved, every instance). */
  logs(): string {
    this.#joined ??= this.#chunks.join("");
    return this.#joined;
  }
  /** The last `lines` lines of output. */
  tail(lines = 20): string {
    return this.logs().split("\n").slice(-lines).join("\n");
  }
  /** Characters of output written so far (dropped ones included): pass to waitForLog or logsSince to see only what comes after. */
  get logLength(): number {
    return this.#dropped + this.#chars;
  }
  /** Output from position `from` (a logLength) on, as far as it is still kept. */
  logsSince(from: number): string {
    return this.logs().slice(Math.max(0, from - this.#dropped));
  }

  #append(text: string): void {
    this.#chunks.push(text);
    this.#chars += text.length;
    const max = this.#opts.maxLogChars ?? 256 * 1024;
    while (this.#chars > max && this.#chunks.length > 1) {
      const n = this.#chunks.shift()!.length;
      this.#chars -= n;
      this.#dropped += n;
    }
    this.#joined = undefined;
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#wake]) w();
  }

  /** Starts a new instance of the command; throws if one is running. */
  spawn(): void {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    installExitHook();
    this.#stopping = false;
    const base = this.#opts.inheritEnv ? process.env : { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };
    const child = spawn(this.command, this.args, {
      env: { ...base, ...this.#opts.env },
      stdio: this.#opts.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
      detached: this.#opts.detached ?? false,
    });
    this.#child = child;
    live.add(child);
    const keep = (b: Buffer): void => this.#append(b.toString());
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.once("error", (err) => this.#append(`spawn failed: ${err.message}\n`));
    // "close", not "exit": the output is drained by then (also emitted when the spawn failed).
    this.#exited = new Promise((resolve) =>
      child.once("close", (code, signal) => {
        live.delete(child);
        this.#notify();
        if (!this.#stopping) this.onUnexpectedExit?.(this, code, signal);
        resolve(code);
      }),
    );
    // Wake waitForLog as soon as the process is gone.
    child.once("exit", () => this.#notify());
  }

  /** Spawns and waits until the new instance's output contains `text`; leaves it running if it does not. */
  async startAndWait(text: string, timeoutMs: number): Promise<void> {
    const from = this.logLength;
    this.spawn();
    await this.waitForLog(text, timeoutMs, from);
  }

  /** Resolves once the output from position `from` on contains `text`; rejects if the process exits first or after `timeoutMs`. */
  async waitForLog(text: string, timeoutMs = 20_000, from = 0): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.logsSince(from).includes(text)) return;
      if (!this.running) throw new Error(`${this.name} exited before logging "${text}":\n${this.logs().slice(-3000)}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${this.name} did not log "${text}" in ${timeoutMs} ms:\n${this.logs().slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#wake.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#wake.add(wake);
      });
    }
  }

  /** Waits for an IPC message matching `pred` (ipc: true); a message `{ error: string }` rejects. */
  waitForMessage<T>(pred: (m: unknown) => m is T, timeoutMs: number): Promise<T> {
    const child = this.child;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no message in ${timeoutMs} ms:\n${this.logs().slice(-3000)}`));
      }, timeoutMs);
      const onMsg = (m: unknown): void => {
        if (pred(m)) {
          cleanup();
          resolve(m);
        } else if (isErrorMessage(m)) {
          cleanup();
          reject(new Error(`${this.name}: ${m.error}`));
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`${this.name} exited (${String(code)}):\n${this.logs().slice(-3000)}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off("message", onMsg);
        child.off("exit", onExit);
      };
      child.on("message", onMsg);
      child.once("exit", onExit);
    });
  }

  /** Sends `signal` without waiting (e.g. SIGSTOP, or SIGTERM before waitForExit()). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#child!.kill(signal);
  }

  /** Sends `signal` (SIGKILL by default) and waits for the exit; resolves with the exit code (of the last instance if none is running). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (!this.running) return this.#exited;
    this.#stopping = true;
    this.#child!.kill(signal);
    return this.#exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit. A no-op if not running. */
  async stop(graceMs = this.#opts.graceMs ?? 10_000): Promise<void> {
    if (!this.running) return;
    this.#stopping = true;
    const child = this.#child!;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** The exit code of the current (last) instance, once it is gone. */
  waitForExit(): Promise<number | null> {
    return this.#exited;
  }
}

function isErrorMessage(m: unknown): m is { error: string } {
  return typeof m === "object" && m !== null && typeof (m as { error?: unknown }).error === "string";
}
