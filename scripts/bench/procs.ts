// Child processes and their memory, read from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/** VmRSS and VmHWM (peak RSS) of a process, in MB; undefined when it is gone. */
export function memOf(pid: number): { rssMb: number; peakRssMb: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { rssMb: round1(kb("VmRSS") / 1024), peakRssMb: round1(kb("VmHWM") / 1024) };
  } catch {
    return undefined;
  }
}

export const round1 = (x: number): number => Math.round(x * 10) / 10;

export class NodeProc {
  readonly child: ChildProcess;
  #out: string[] = [];
  #outLen = 0;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    file: string,
    opts: { args?: string[]; nodeArgs?: string[]; env?: Record<string, string>; ipc?: boolean } = {},
  ) {
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), file, ...(opts.args ?? [])], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...opts.env },
      stdio: opts.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
    });
    const keep = (b: Buffer): void => {
      const s = b.toString();
      this.#out.push(s);
      this.#outLen += s.length;
      while (this.#outLen > 256 * 1024 && this.#out.length > 1) this.#outLen -= this.#out.shift()!.length;
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.exited = new Promise((r) => this.child.once("exit", (code) => r(code)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  logs(): string {
    return this.#out.join("");
  }

  async waitForLog(text: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.logs().includes(text)) {
      if (!this.running) throw new Error(`${this.name} exited before logging "${text}":\n${this.logs().slice(-3000)}`);
      if (Date.now() > until) throw new Error(`${this.name} did not log "${text}" in ${timeoutMs} ms:\n${this.logs().slice(-3000)}`);
      await sleep(50);
    }
  }

  /** Waits for an IPC message matching `pred`. */
  waitForMessage<T>(pred: (m: unknown) => m is T, timeoutMs: number): Promise<T> {
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
        this.child.off("message", onMsg);
        this.child.off("exit", onExit);
      };
      this.child.on("message", onMsg);
      this.child.once("exit", onExit);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

function isErrorMessage(m: unknown): m is { error: string } {
  return typeof m === "object" && m !== null && typeof (m as { error?: unknown }).error === "string";
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used so far; undefined when it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" of the command name; utime and stime are the 14th and 15th fields overall.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}
