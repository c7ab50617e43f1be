// The quick start's demo (`npm run demo`), and the commands its --keep mode
// tells a person to type next, run as printed (`npx deployctl` is the built
// CLI in a clone; here node runs it directly).
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/paths.js";
import { runCli } from "./helpers/deployctl.js";

const DEMO = join(ROOT, "dist/scripts/demo.js");

function startDemo(args: string[]): { child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [DEMO, ...args], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

async function waitForOutput(demo: ReturnType<typeof startDemo>, pattern: RegExp): Promise<RegExpExecArray> {
  for (;;) {
    const m = pattern.exec(demo.output());
    if (m) return m;
    if (demo.child.exitCode !== null) throw new Error(`demo exited (${demo.child.exitCode}) before printing ${pattern}:\n${demo.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("npm run demo", () => {
  const running: ReturnType<typeof startDemo>[] = [];
  afterAll(() => {
    for (const d of running) if (d.child.exitCode === null) d.child.kill("SIGKILL");
  });

  it("runs a real stack, deploys web to 3 agents, and exits 0", async () => {
    const demo = startDemo([]);
    running.push(demo);
    expect(await demo.exited, demo.output()).toBe(0);
    expect(demo.output()).toMatch(/deployment d-\S+: SUCCEEDED \(3 of 3 target\(s\) succeeded\)/);
    expect(demo.output()).toContain("kv get --raw deploy_deployments");
  }, 120_000);

  it("--keep prints the commands to try next; each works as printed; Ctrl-C stops the stack", async () => {
    const demo = startDemo(["--keep"]);
    running.push(demo);
    const block = await waitForOutput(demo, /try it, in another shell in this directory:\n((?: {2}.*\n)+)/);
    const lines = block[1]!.trim().split("\n").map((l) => l.trim().replace(/\s+#.*$/, ""));
    const coordinator = /^export DEPLOY_COORDINATOR=(\S+)$/.exec(lines[0]!)?.[1];
    expect(coordinator, lines[0]).toBeDefined();
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", DEPLOY_COORDINATOR: coordinator! };
    const results: Record<string, number | null> = {};
    for (const line of lines.slice(1)) {
      expect(line, "each command is an npx deployctl command").toMatch(/^npx deployctl /);
      const args = line.replace(/^npx deployctl /, "").split(/\s+/);
      const r = await runCli(args, { env: { ...env } });
      results[line] = r.code;
      if (line.includes("examples/bad")) {
        expect(r.code, `${line}\n${r.stdout}${r.stderr}`).toBe(1);
        expect(r.stdout).toMatch(/validate hook failed/);
      } else {
        expect(r.code, `${line}\n${r.stdout}${r.stderr}`).toBe(0);
      }
    }
    expect(Object.keys(results).length).toBe(5);
    demo.child.kill("SIGINT");
    expect(await demo.exited, demo.output()).toBe(0);
  }, 180_000);
});
