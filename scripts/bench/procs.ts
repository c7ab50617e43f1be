// Child processes and their memory, read from /proc.
import { readFileSync, writeFileSync } from "node:fs";
import { ChildProc, sleep } from "../lib/childProc.js";

export { sleep };

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

/** Resets a process's peak RSS (VmHWM) to its current RSS (Linux: clear_refs 5); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export const round1 = (x: number): number => Math.round(x * 10) / 10;

/** A node child process, started at once (scripts/lib/childProc.ts). */
export class NodeProc extends ChildProc {
  constructor(
    name: string,
    file: string,
    opts: { args?: string[]; nodeArgs?: string[]; env?: Record<string, string>; ipc?: boolean } = {},
  ) {
    super(name, process.execPath, [...(opts.nodeArgs ?? []), file, ...(opts.args ?? [])], { env: opts.env, ipc: opts.ipc });
    this.spawn();
  }

  /** Resolves with the exit code. */
  get exited(): Promise<number | null> {
    return this.waitForExit();
  }
}

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
