// Runs one app's deploy executable and reports what happened.
//
// The runner never rejects because of the executable: a non-zero exit, a
// crash, a timeout or a missing file all resolve to a RunResult with outcome
// "failed", because the caller has to journal and report every attempt. It
// only rejects for programming errors (invalid options).
//
// node:child_process directly, not execa: importing execa costs an agent's
// first apply a noticeable delay and some RSS, for a spawn we configure
// fully ourselves anyway.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, open, stat } from "node:fs/promises";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";
import { crlfShebang } from "../../shared/src/shebang.js";
import { runAsEnv, type RunAs } from "./runAs.js";

export interface RunOptions {
  /** Absolute path of an executable. */
  file: string;
  args?: string[];
  cwd?: string;
  /** Merged over a minimal base env (PATH, HOME, LANG); the agent's own env is not inherited. */
  env: Record<string, string>;
  /**
   * Run as this account (uid, gid; HOME, USER and LOGNAME its own) instead
   * of the agent's. Its supplementary groups are not set: libuv drops every
   * supplementary group when it changes the uid.
   */
  runAs?: RunAs;
  /** The whole process group is SIGKILLed when exceeded. */
  timeoutMs: number;
  /** At most this many output lines are passed to onLines in total; the rest are counted as cut. */
  maxLines: number;
  /** Longer lines are cut to this many characters plus a "…" suffix. */
  maxLineLength: number;
  /**
   * Batched output lines (stdout and stderr interleaved in arrival order).
   * Called when flushMs has passed since the first buffered line, when 20
   * lines are buffered, and once at the end if lines remain. Must not throw;
   * if it does, the error is swallowed so the run still completes.
   */
  onLines: (lines: string[]) => void;
  /** Default 250. */
  flushMs?: number;
  /** Abort = kill the whole process group now (used on shutdown). */
  signal?: AbortSignal;
  /**
   * Asked synchronously right before the spawn: a reason means the process
   * is not started and the run fails with "not started: <reason>" (the
   * agent's start lease).
   */
  mayStart?: () => string | undefined;
}

export interface RunResult {
  outcome: "succeeded" | "failed";
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  /** How many lines were not passed to onLines. */
  linesCut: number;
  /** Last non-empty output line (truncated), for the result message. */
  lastLine: string;
  /** One human sentence, e.g. "exit code 3" or "killed after timeout of 2000 ms". */
  message: string;
  /**
   * The executable exited, but a process it started (in the background)
   * still held its stdout or stderr open OUTPUT_DRAIN_MS later: the result
   * is the exit's, that process was left running, and its output after that
   * was not captured.
   */
  outputHeldOpen: boolean;
}

export class RunOptionsError extends Error {
  readonly code = "RUN_INVALID_OPTIONS";
  override readonly name = "RunOptionsError";
}

const DEFAULT_FLUSH_MS = 250;
/**
 * After the executable exits, how long the run waits for its output pipes
 * to close: output written just before the exit, or by a child finishing
 * just after it, is still read. A process left running in the background
 * that keeps them open past this does not hold the result (a start hook
 * that launches the app with `server &` succeeds with its exit), and is not
 * killed.
 */
export const OUTPUT_DRAIN_MS = 1000;
/** The line added to the output when a background process keeps it open (see OUTPUT_DRAIN_MS). */
export const HELD_OPEN_NOTICE =
  "[agent] exited, but a process it started still holds its output open: left running, its output no longer captured. " +
  "Redirect its output (> file 2>&1), or better run it as a service of its own (systemctl, systemd-run): under the agent's systemd unit it stops when the agent stops";
const BATCH_LINES = 20;
// Only these are inherited: enough for a shell script to find its tools and
// decode UTF-8, without leaking the agent's credentials or config.
const BASE_ENV_KEYS = ["PATH", "HOME", "LANG"] as const;

export async function runExecutable(opts: RunOptions): Promise<RunResult> {
  validate(opts);
  const started = performance.now();
  const sink = new LineSink(opts.maxLines, opts.flushMs ?? DEFAULT_FLUSH_MS, opts.onLines);
  const finish = (fields: Pick<RunResult, "outcome" | "exitCode" | "signal" | "timedOut" | "aborted" | "message">, outputHeldOpen = false): RunResult => {
    sink.close();
    return {
      ...fields,
      outputHeldOpen,
      durationMs: Math.round(performance.now() - started),
      linesCut: sink.cut,
      lastLine: sink.lastLine,
    };
  };

  // Nothing should start once shutdown has begun (or a kill was asked).
  if (opts.signal?.aborted) {
    return finish({ outcome: "failed", exitCode: null, signal: null, timedOut: false, aborted: true, message: abortMessage(opts.signal) });
  }

  const refused = opts.mayStart?.();
  if (refused !== undefined) {
    return finish({ outcome: "failed", exitCode: null, signal: null, timedOut: false, aborted: false, message: `not started: ${refused}` });
  }
  let subprocess: ChildProcess;
  try {
    subprocess = spawn(opts.file, opts.args ?? [], {
      cwd: opts.cwd,
      // Only ours: the agent's own environment is not inherited.
      env: { ...baseEnv(), ...(opts.runAs ? runAsEnv(opts.runAs) : {}), ...opts.env },
      // Only a change of account: a non-root agent may name itself.
      ...(opts.runAs && (opts.runAs.uid !== process.getuid?.() || opts.runAs.gid !== process.getgid?.()) ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
      // Own process group (setsid), so one kill(-pid) reaches grandchildren.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    // Some options are validated synchronously; treat those as start failures.
    return finish({ outcome: "failed", exitCode: null, signal: null, timedOut: false, aborted: false, message: startFailure(err) });
  }
  const pid = subprocess.pid;
  let timedOut = false;
  let aborted = false;
  const killGroup = (): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch (err) {
      // ESRCH: every member of the group has exited already.
      if (isErrnoException(err) && err.code === "ESRCH") return;
      // Anything else (EPERM) cannot be fixed from here, and throwing from a
      // timer would crash the agent; at least stop the leader.
      subprocess.kill("SIGKILL");
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, opts.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    killGroup();
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  // Settles once the process has exited and both pipes have closed ("close"),
  // or OUTPUT_DRAIN_MS after the exit when a process it left running holds
  // them open (heldOpen); or with the error when it never started. The
  // timeout and an abort kill the group only until the exit: what the
  // executable chose to leave running is not ours to kill.
  const ended = new Promise<{ exitCode: number | null; signal: string | null; heldOpen?: true } | { startError: unknown }>((resolve) => {
    subprocess.once("exit", (exitCode: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      const drain = setTimeout(() => resolve({ exitCode, signal, heldOpen: true }), OUTPUT_DRAIN_MS);
      subprocess.once("close", () => {
        clearTimeout(drain);
        resolve({ exitCode, signal });
      });
    });
    subprocess.on("error", (err) => {
      // A failed kill of a running child is not the end of the run.
      if (subprocess.pid === undefined) resolve({ startError: err });
    });
  });

  const stdout = new LineSplitter(opts.maxLineLength, (line) => sink.add(line));
  const stderr = new LineSplitter(opts.maxLineLength, (line) => sink.add(line));
  attach(subprocess.stdout, stdout);
  attach(subprocess.stderr, stderr);

  try {
    const result = await ended;
    const heldOpen = "heldOpen" in result;
    if (heldOpen) {
      // Still read and thrown away, so that the process left running does
      // not die of SIGPIPE at its next write, and nothing reaches the sink
      // after the result.
      for (const stream of [subprocess.stdout, subprocess.stderr]) {
        stream?.removeAllListeners("data");
        stream?.on("error", () => undefined).resume();
      }
    }
    stdout.end();
    stderr.end();
    if (heldOpen) sink.add(HELD_OPEN_NOTICE);

    if ("startError" in result) {
      const why = await whyNotFound(opts, result.startError);
      return finish({ outcome: "failed", exitCode: null, signal: null, timedOut: false, aborted: false, message: `${startFailure(result.startError)}${why ? `: ${why}` : ""}` });
    }
    const { exitCode, signal } = result;
    const base = { exitCode, signal, timedOut, aborted };
    // Abort wins over timeout: on shutdown the cause that matters is ours.
    if (aborted) return finish({ ...base, outcome: "failed", message: abortMessage(opts.signal) }, heldOpen);
    if (timedOut) return finish({ ...base, outcome: "failed", message: `killed after timeout of ${opts.timeoutMs} ms` }, heldOpen);
    if (signal !== null) return finish({ ...base, outcome: "failed", message: `killed by ${signal}` }, heldOpen);
    if (exitCode === null) return finish({ ...base, outcome: "failed", message: "failed: no exit code or signal" }, heldOpen);
    // 127 is "command not found": `#!/usr/bin/env bash\r` gets that far.
    const crlf = exitCode === 127 ? crlfNote(await readHead(opts.file)) : undefined;
    return finish({ ...base, outcome: exitCode === 0 ? "succeeded" : "failed", message: `exit code ${exitCode}${crlf ? `: ${crlf}` : ""}` }, heldOpen);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

function validate(opts: RunOptions): void {
  if (!path.isAbsolute(opts.file)) throw new RunOptionsError(`file must be an absolute path: ${opts.file}`);
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) throw new RunOptionsError("timeoutMs must be a positive number");
  if (!(Number.isInteger(opts.maxLines) && opts.maxLines >= 0)) throw new RunOptionsError("maxLines must be a non-negative integer");
  if (!(Number.isInteger(opts.maxLineLength) && opts.maxLineLength >= 1)) throw new RunOptionsError("maxLineLength must be a positive integer");
  if (opts.flushMs !== undefined && !(Number.isFinite(opts.flushMs) && opts.flushMs > 0)) {
    throw new RunOptionsError("flushMs must be a positive number");
  }
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of BASE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

function attach(stream: Readable | null | undefined, splitter: LineSplitter): void {
  if (!stream) return;
  stream.on("data", (chunk: Buffer | string) => splitter.push(chunk));
}

function startFailure(err: unknown): string {
  const code = isErrnoException(err) && typeof err.code === "string" ? err.code : undefined;
  const detail = err instanceof Error ? err.message : String(err);
  return `could not start: ${code ? `${code} ` : ""}(${firstLine(detail)})`;
}

/**
 * ENOENT from a spawn names the executable even when what is missing is its
 * #! interpreter (a script saved with Windows line endings names
 * "/bin/bash\r") or its working directory: says which, or undefined.
 */
async function whyNotFound(opts: RunOptions, err: unknown): Promise<string | undefined> {
  if (!isErrnoException(err) || err.code !== "ENOENT") return undefined;
  const missingCwd = async (): Promise<string | undefined> => (opts.cwd !== undefined && !(await isDir(opts.cwd)) ? `its working directory ${opts.cwd} does not exist` : undefined);
  const head = await readHead(opts.file);
  if (head === undefined) return (await missingCwd()) ?? `${opts.file} does not exist`;
  return (await interpreterProblem(head)) ?? (await missingCwd());
}

/**
 * What would keep `file` from starting, told before a deployment needs it
 * (the agent's start), or undefined: missing, not executable by the agent
 * (checked only when it runs as the agent: `checkExecBit`), a #! line
 * saved with Windows line endings, or a #! interpreter that is missing.
 */
export async function executableProblem(file: string, checkExecBit: boolean): Promise<string | undefined> {
  if (!(await exists(file))) return `${file} does not exist`;
  if (checkExecBit) {
    try {
      await access(file, constants.X_OK);
    } catch (err) {
      return `${file} is not executable by the agent (${isErrnoException(err) ? err.code : String(err)})`;
    }
  }
  const head = await readHead(file);
  return head === undefined ? undefined : interpreterProblem(head);
}

/** A #! line ending in a carriage return, or naming an interpreter this machine lacks; else undefined. */
async function interpreterProblem(head: string): Promise<string | undefined> {
  const crlf = crlfNote(head);
  if (crlf || !head.startsWith("#!")) return crlf;
  const interpreter = head.split("\n", 1)[0]!.slice(2).trim().split(/\s+/, 1)[0] ?? "";
  if (interpreter && !(await exists(interpreter))) return `its interpreter ${interpreter} (its #! line) does not exist on this machine`;
  return undefined;
}

/** Says so when a script's #! line ends in a carriage return (saved with Windows line endings). */
function crlfNote(head: string | undefined): string | undefined {
  const line = head === undefined ? undefined : crlfShebang(head);
  return line === undefined ? undefined : `its first line "${line}\\r" ends in a carriage return (Windows line endings), so the interpreter it names is not found; convert the file (dos2unix)`;
}

async function readHead(file: string): Promise<string | undefined> {
  try {
    const fh = await open(file, "r");
    try {
      const buf = Buffer.alloc(256);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString("latin1");
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);
const isDir = (p: string): Promise<boolean> => stat(p).then((s) => s.isDirectory(), () => false);

function firstLine(text: string): string {
  return text.split("\n", 1)[0] ?? "";
}

function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return typeof err === "object" && err !== null && "code" in err;
}

/**
 * Splits one byte stream into lines while holding at most maxLength + 1
 * characters of the current line, so a child writing a huge line without a
 * newline cannot grow our memory.
 */
class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";
  // True once characters of the current line were dropped.
  private overflowed = false;

  constructor(
    private readonly maxLength: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: Buffer | string): void {
    const text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    let start = 0;
    for (;;) {
      const newline = text.indexOf("\n", start);
      if (newline === -1) {
        this.append(text, start, text.length);
        return;
      }
      this.append(text, start, newline);
      this.completeLine();
      start = newline + 1;
    }
  }

  end(): void {
    const rest = this.decoder.end();
    if (rest) this.push(rest);
    // A final line without a trailing newline still counts.
    if (this.partial !== "" || this.overflowed) this.completeLine();
  }

  private append(text: string, from: number, to: number): void {
    if (this.overflowed) return;
    // One spare character so "exactly maxLength + \r" is not mistaken for overflow.
    const room = this.maxLength + 1 - this.partial.length;
    if (to - from > room) {
      this.partial += text.slice(from, from + room);
      this.overflowed = true;
    } else {
      this.partial += text.slice(from, to);
    }
  }

  private completeLine(): void {
    let line = this.partial;
    if (!this.overflowed && line.endsWith("\r")) line = line.slice(0, -1);
    if (this.overflowed || line.length > this.maxLength) line = truncate(line, this.maxLength);
    this.partial = "";
    this.overflowed = false;
    this.emit(line);
  }
}

function truncate(line: string, maxLength: number): string {
  let cut = line.slice(0, maxLength);
  // Do not leave half of a surrogate pair before the ellipsis.
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** Applies the line budget and batches lines for onLines. */
class LineSink {
  cut = 0;
  lastLine = "";
  private delivered = 0;
  private batch: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxLines: number,
    private readonly flushMs: number,
    private readonly onLines: (lines: string[]) => void,
  ) {}

  add(line: string): void {
    // Tracked for cut lines too: the end of the output explains a failure best.
    if (line.trim() !== "") this.lastLine = line;
    if (this.delivered + this.batch.length >= this.maxLines) {
      this.cut++;
      return;
    }
    this.batch.push(line);
    if (this.batch.length >= BATCH_LINES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  close(): void {
    this.flush();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0) return;
    const lines = this.batch;
    this.batch = [];
    this.delivered += lines.length;
    try {
      this.onLines(lines);
    } catch {
      // The caller's sink failing (e.g. a full publish buffer) must not turn
      // a deploy that ran into an unreported crash of the runner.
    }
  }
}

/** Why a run was stopped: the abort's reason when it is a sentence (a kill asked with the deployment's cancel: handleCommand.ts), else the agent's shutdown. */
function abortMessage(signal: AbortSignal | undefined): string {
  return typeof signal?.reason === "string" ? signal.reason : "interrupted by shutdown";
}
