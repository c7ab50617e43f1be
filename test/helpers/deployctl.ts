// Running the BUILT deployctl (dist/) the way a person does: as a child
// process with pipes, through `bash -c` pipelines, and inside a real
// pseudo-terminal (a tmux server of the test's own, on its own socket).
import { spawn, spawnSync } from "node:child_process";
import { cp, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

export const CLI = resolve(import.meta.dirname, "../../dist/services/deployctl/src/main.js");
export const HELLO = resolve(import.meta.dirname, "../fixtures/bundles/hello");

/** proto3 JSON: Z-normalized RFC 3339 with 0, 3, 6 or 9 fraction digits. */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
/** proto3 JSON Duration: seconds with 0, 3, 6 or 9 fraction digits and an "s". */
export const DURATION = /^-?\d+(\.\d{3}|\.\d{6}|\.\d{9})?s$/;
/** A line of a Node stack trace. */
export const STACK_LINE = /^\s+at /m;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A run's exit code and output, for an assertion's message. */
export const shown = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** The id in deploy's (or rollback's) "deployment d-…:" line; throws, showing the run, when there is none. */
export function deploymentIdOf(r: CliResult): string {
  const m = /^deployment (d-\S+):/m.exec(r.stdout);
  if (!m) throw new Error(`no deployment id printed:\n${shown(r)}`);
  return m[1]!;
}

export interface RunOptions {
  env: Record<string, string>;
  /** Close the read end of stdout's pipe before deployctl writes anything: a reader that went away. */
  closedStdout?: boolean;
}

export function runCli(args: string[], o: RunOptions): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: o.env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  if (o.closedStdout) child.stdout.destroy();
  else child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  return new Promise((res) => child.once("close", (code, signal) => res({ code, signal, stdout: out, stderr: err })));
}

export interface RunningShell {
  /** Resolves once stdout matches. */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
  done: Promise<CliResult>;
}

/** `bash -c script`: real pipes between real processes. */
export function startShell(script: string, env: Record<string, string>): RunningShell {
  const child = spawn("bash", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const done = new Promise<CliResult>((res) => child.once("close", (code, signal) => res({ code, signal, stdout: out, stderr: err })));
  const waitFor = async (re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`bash exited before printing ${re}:\n${out}\n${err}`);
      if (Date.now() > until) throw new Error(`bash did not print ${re} within ${timeoutMs} ms:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { waitFor, done };
}

export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A copy of the hello bundle whose before_install hook waits until `gate`
 * exists, so a test decides when the deployment moves on (no sleeps to
 * race). Hook timeouts are raised so the wait cannot time out first.
 */
export async function gatedBundle(dir: string, gate: string): Promise<string> {
  await cp(HELLO, dir, { recursive: true });
  await writeFile(
    join(dir, "hooks", "before_install.sh"),
    `#!/bin/sh\necho "waiting for the gate"\nwhile [ ! -e ${shQuote(gate)} ]; do sleep 0.1; done\necho "gate open"\n`,
    { mode: 0o755 },
  );
  await writeFile(
    join(dir, "deploy.yaml"),
    [
      "version: 1",
      "hooks:",
      "  before_install: { run: hooks/before_install.sh, timeout: 600s }",
      "  start:          { run: hooks/start.sh, timeout: 30s }",
      "  validate:       { run: hooks/validate.sh, timeout: 30s }",
      "keep_releases: 3",
      "",
    ].join("\n"),
  );
  return dir;
}

/** A tmux server of one test file, its socket in the test's directory: real terminals of a given size. */
export class Tmux {
  constructor(readonly socket: string) {}

  #tmux(args: string[]): string {
    const r = spawnSync("tmux", ["-S", this.socket, ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }

  static available(): boolean {
    return spawnSync("tmux", ["-V"]).status === 0;
  }

  /** Runs `command` (a shell command line) in a new 200x50 terminal; the pane stays readable after it exits. */
  start(session: string, command: string): void {
    this.#tmux(["new-session", "-d", "-s", session, "-x", "200", "-y", "50", command]);
    this.#tmux(["set-option", "-t", session, "remain-on-exit", "on"]);
  }

  /**
   * What the terminal shows, wrapped lines joined, from the start of its
   * scrollback: tmux's "Pane is dead" line (remain-on-exit) scrolls the
   * screen up by one when the command ends.
   */
  screen(session: string): string {
    return this.#tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", session]);
  }

  keys(session: string, ...keys: string[]): void {
    this.#tmux(["send-keys", "-t", session, ...keys]);
  }

  /** Text typed literally (no key-name lookup). */
  type(session: string, text: string): void {
    this.#tmux(["send-keys", "-t", session, "-l", text]);
  }

  async waitFor(session: string, re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen(session);
      const m = re.exec(screen);
      if (m) return m;
      if (Date.now() > until) throw new Error(`terminal ${session} did not show ${re} within ${timeoutMs} ms:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    spawnSync("tmux", ["-S", this.socket, "kill-server"]);
  }
}

/** Every value of `doc` under a key, recursively, as [key path, value]. */
export function walk(doc: unknown, path = "$"): [string, unknown][] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => walk(v, `${path}[${i}]`));
  if (doc !== null && typeof doc === "object") {
    return Object.entries(doc).flatMap(([k, v]) => [[`${path}.${k}`, v] as [string, unknown], ...walk(v, `${path}.${k}`)]);
  }
  return [];
}
