import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { executableProblem, HELD_OPEN_NOTICE, runExecutable, RunOptionsError, type RunOptions } from "../services/agent/src/runner.js";

const hooks = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "hooks");
const hook = (name: string): string => path.join(hooks, name);

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "agent-runner-"));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs with generous defaults and collects every batch passed to onLines. */
async function run(overrides: Partial<RunOptions> & Pick<RunOptions, "file">) {
  const batches: string[][] = [];
  const result = await runExecutable({
    env: {},
    timeoutMs: 30_000,
    maxLines: 1000,
    maxLineLength: 200,
    onLines: (lines) => batches.push(lines),
    ...overrides,
  });
  return { result, batches, lines: batches.flat() };
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
  // A killed orphan stays a zombie (and kill(pid, 0) keeps succeeding) until
  // whatever runs as PID 1 reaps it, which in some containers takes seconds
  // or never happens. A zombie runs nothing, so it counts as gone.
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return !/^\d+ \(.*\) Z/s.test(stat);
}

async function readPid(file: string): Promise<number> {
  // The script writes the pid right after starting; poll until it is there.
  for (;;) {
    const text = await fs.readFile(file, "utf8").catch(() => "");
    if (/^\d+\s*$/.test(text)) return Number(text);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("runExecutable", () => {
  it("reports success with all output lines and the given env", async () => {
    const { result, lines } = await run({ file: hook("ok.sh"), env: { APP_NAME: "shop" } });
    expect(result).toMatchObject({
      outcome: "succeeded",
      exitCode: 0,
      signal: null,
      timedOut: false,
      aborted: false,
      linesCut: 0,
      message: "exit code 0",
    });
    // Which pipe Node reads first is not determined, so either last line is fine.
    expect(["done", "warming up"]).toContain(result.lastLine);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    // stdout/stderr interleave is up to the OS scheduler; compare as a set.
    expect([...lines].sort()).toEqual(["deploying shop", "done", "warming up"]);
  });

  it("does not pass the agent's own environment through", async () => {
    process.env.RUNNER_TEST_SECRET = "leak";
    try {
      const script = path.join(tmp, "env.sh");
      await fs.writeFile(script, '#!/usr/bin/env bash\necho "secret=${RUNNER_TEST_SECRET:-unset} path=${PATH:+set}"\n', { mode: 0o755 });
      const { lines } = await run({ file: script });
      expect(lines).toEqual(["secret=unset path=set"]);
    } finally {
      delete process.env.RUNNER_TEST_SECRET;
    }
  });

  it("reports a non-zero exit as failed", async () => {
    const { result, lines } = await run({ file: hook("fail.sh") });
    expect(result).toMatchObject({ outcome: "failed", exitCode: 3, signal: null, timedOut: false, message: "exit code 3" });
    expect([...lines].sort()).toEqual(["checking config", "config invalid: missing key"]);
  });

  it("reports a crash by signal", async () => {
    const { result, lines } = await run({ file: hook("crash.sh") });
    expect(result).toMatchObject({ outcome: "failed", exitCode: null, signal: "SIGKILL", timedOut: false, aborted: false });
    expect(result.message).toBe("killed by SIGKILL");
    expect(lines).toEqual(["about to crash"]);
    expect(result.lastLine).toBe("about to crash");
  });

  it("kills the whole process group, grandchildren included, on timeout", async () => {
    const pidFile = path.join(tmp, "grandchild.pid");
    const { result } = await run({ file: hook("hang.sh"), env: { PIDFILE: pidFile }, timeoutMs: 1000 });
    expect(result).toMatchObject({
      outcome: "failed",
      signal: "SIGKILL",
      timedOut: true,
      aborted: false,
      message: "killed after timeout of 1000 ms",
    });
    const grandchild = await readPid(pidFile);
    // The kill is sent before the run resolves, but takes effect asynchronously.
    await expect.poll(() => isAlive(grandchild), { timeout: 5000 }).toBe(false);
  });

  it("answers with the exit of an executable that leaves a process running in the background, and leaves that process alone", async () => {
    // The classic start hook: `server &` without redirecting its output. Its
    // exit is the result, not the hook's timeout, and the server is not killed.
    const pidFile = path.join(tmp, "server.pid");
    const { result, lines } = await run({ file: hook("background.sh"), env: { PIDFILE: pidFile }, timeoutMs: 60_000 });
    const server = await readPid(pidFile);
    try {
      expect(result).toMatchObject({ outcome: "succeeded", exitCode: 0, timedOut: false, aborted: false, outputHeldOpen: true, message: "exit code 0" });
      expect(lines).toEqual([`started server ${server}`, HELD_OPEN_NOTICE]);
      expect(await isAlive(server)).toBe(true);
    } finally {
      process.kill(server, "SIGKILL");
    }
  });

  it("ends at the timeout even when a process out of the group's reach keeps the output open", async () => {
    // Before the output was read for a bounded time after the exit, such a
    // run never ended: the group kill cannot reach a process in a session
    // of its own, and its pipes never closed.
    const pidFile = path.join(tmp, "escaped.pid");
    const { result } = await run({ file: hook("escape-hang.sh"), env: { PIDFILE: pidFile }, timeoutMs: 1000 });
    const escaped = await readPid(pidFile);
    try {
      expect(result).toMatchObject({ outcome: "failed", timedOut: true, outputHeldOpen: true, message: "killed after timeout of 1000 ms" });
    } finally {
      process.kill(escaped, "SIGKILL");
    }
  });

  it("still reads what a child writes just after the executable's exit", async () => {
    const { result, lines } = await run({ file: hook("late-child.sh") });
    expect(result).toMatchObject({ outcome: "succeeded", outputHeldOpen: false });
    expect(lines).toEqual(["exiting", "written after the exit"]);
  });

  it("kills the process group when the signal aborts", async () => {
    const pidFile = path.join(tmp, "grandchild.pid");
    const controller = new AbortController();
    const running = run({ file: hook("hang.sh"), env: { PIDFILE: pidFile }, signal: controller.signal });
    const grandchild = await readPid(pidFile);
    expect(await isAlive(grandchild)).toBe(true);
    controller.abort();
    const { result } = await running;
    expect(result).toMatchObject({ outcome: "failed", aborted: true, timedOut: false, message: "interrupted by shutdown" });
    await expect.poll(() => isAlive(grandchild), { timeout: 5000 }).toBe(false);
  });

  it("does not start anything when the signal is already aborted", async () => {
    const marker = path.join(tmp, "ran");
    const script = path.join(tmp, "touch.sh");
    await fs.writeFile(script, `#!/usr/bin/env bash\ntouch ${JSON.stringify(marker)}\n`, { mode: 0o755 });
    const { result } = await run({ file: script, signal: AbortSignal.abort() });
    expect(result).toMatchObject({ outcome: "failed", aborted: true, message: "interrupted by shutdown" });
    await expect(fs.access(marker)).rejects.toThrow();
  });

  it("bounds huge output to maxLines and counts the rest as cut", async () => {
    const maxLines = 500;
    const { result, batches, lines } = await run({ file: hook("huge-output.sh"), maxLines, maxLineLength: 40 });
    expect(result.outcome).toBe("succeeded");
    expect(lines).toHaveLength(maxLines);
    // 200000 filler lines + the final marker line.
    expect(result.linesCut).toBe(200_001 - maxLines);
    expect(lines[0]).toBe(`${"x".repeat(40)}…`);
    expect(result.lastLine).toBe("end of output");
    for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(20);
  });

  it("truncates a single huge line without a newline", async () => {
    const script = path.join(tmp, "one-line.sh");
    // 5 MB on stdout with no newline at all.
    await fs.writeFile(script, "#!/usr/bin/env bash\nhead -c 5000000 /dev/zero | tr '\\0' 'y'\n", { mode: 0o755 });
    const { result, lines } = await run({ file: script, maxLineLength: 10 });
    expect(lines).toEqual(["yyyyyyyyyy…"]);
    expect(result.lastLine).toBe("yyyyyyyyyy…");
  });

  it("resolves failed when the file does not exist", async () => {
    const { result, lines } = await run({ file: path.join(tmp, "no-such-hook.sh") });
    expect(result).toMatchObject({ outcome: "failed", exitCode: null, signal: null, timedOut: false, aborted: false });
    expect(result.message).toMatch(/^could not start: ENOENT/);
    expect(lines).toEqual([]);
  });

  it("says what is missing when a script exists but its #! interpreter does not", async () => {
    const write = async (name: string, text: string): Promise<string> => {
      const file = path.join(tmp, name);
      await fs.writeFile(file, text, { mode: 0o755 });
      return file;
    };
    // Saved with Windows line endings: the kernel looks for "/bin/bash\r".
    const crlf = await run({ file: await write("crlf.sh", "#!/bin/bash\r\necho hi\r\n") });
    expect(crlf.result).toMatchObject({ outcome: "failed", exitCode: null });
    expect(crlf.result.message).toMatch(/^could not start: ENOENT .*: its first line "#!\/bin\/bash\\r" ends in a carriage return \(Windows line endings\), so the interpreter it names is not found; convert the file \(dos2unix\)$/);
    // Through env, the same file gets as far as env's "command not found".
    const viaEnv = await run({ file: await write("crlf-env.sh", "#!/usr/bin/env bash\r\necho hi\r\n") });
    expect(viaEnv.result).toMatchObject({ outcome: "failed", exitCode: 127 });
    expect(viaEnv.result.message).toBe('exit code 127: its first line "#!/usr/bin/env bash\\r" ends in a carriage return (Windows line endings), so the interpreter it names is not found; convert the file (dos2unix)');
    const missing = await run({ file: await write("py.sh", "#!/no/such/python3 -u\nprint(1)\n") });
    expect(missing.result.message).toMatch(/^could not start: ENOENT .*: its interpreter \/no\/such\/python3 \(its #! line\) does not exist on this machine$/);
  });

  it("tells before any run what would keep an executable from starting", async () => {
    const write = async (name: string, text: string, mode = 0o755): Promise<string> => {
      const file = path.join(tmp, name);
      await fs.writeFile(file, text, { mode });
      return file;
    };
    expect(await executableProblem(hook("ok.sh"), true)).toBeUndefined();
    expect(await executableProblem(path.join(tmp, "missing.sh"), true)).toBe(`${path.join(tmp, "missing.sh")} does not exist`);
    const plain = await write("plain.sh", "#!/bin/sh\ntrue\n", 0o644);
    // Root may execute nothing without an execute bit either.
    expect(await executableProblem(plain, true)).toMatch(/is not executable by the agent \(EACCES\)$/);
    expect(await executableProblem(plain, false)).toBeUndefined();
    expect(await executableProblem(await write("crlf.sh", "#!/usr/bin/env bash\r\ntrue\r\n"), true)).toMatch(/ends in a carriage return \(Windows line endings\)/);
    expect(await executableProblem(await write("py.sh", "#!/no/such/python3\n"), true)).toBe("its interpreter /no/such/python3 (its #! line) does not exist on this machine");
  });

  it("resolves failed when the file is not executable", async () => {
    const script = path.join(tmp, "not-executable.sh");
    await fs.writeFile(script, "#!/usr/bin/env bash\necho hi\n", { mode: 0o644 });
    const { result } = await run({ file: script });
    expect(result.outcome).toBe("failed");
    expect(result.message).toMatch(/^could not start: EACCES/);
  });

  it("rejects invalid options as programming errors", async () => {
    await expect(run({ file: "relative/hook.sh" })).rejects.toBeInstanceOf(RunOptionsError);
    await expect(run({ file: hook("ok.sh"), timeoutMs: 0 })).rejects.toMatchObject({ code: "RUN_INVALID_OPTIONS" });
  });
});
