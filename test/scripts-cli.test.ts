// The scripts an operator runs by hand (bench, chaos, cluster, demo, soak): --help
// prints the usage and exits 0, and a bad option or value names itself in
// one line before the usage and exits 2, starting nothing (no stack trace,
// no stack of processes).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/paths.js";

function run(script: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "dist/scripts", `${script}.js`), ...args], { cwd: ROOT, encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("script command lines", () => {
  it.each(["bench", "chaos", "cluster", "demo", "soak"])("%s --help prints its usage and exits 0", (script) => {
    const r = run(script, ["--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
  });

  it.each([
    ["bench", ["--bogus"], /^bench: Unknown option '--bogus'/],
    ["bench", ["--shapes", "fanout:ten"], /^bench: --shapes: bad entry "fanout:ten"/],
    ["bench", ["--scale-n", "many"], /^bench: --scale-n: "many" is not a number >= 1/],
    ["bench", ["--only", "api"], /^bench: --only: unknown part "api"/],
    ["chaos", ["--runs", "x"], /^chaos: --runs: "x" is not a whole number/],
    ["chaos", ["--minutes", "0"], /^chaos: --minutes: "0" is not a positive number/],
    ["cluster", ["--bogus"], /^cluster: Unknown option '--bogus'/],
    ["demo", ["v1", "v2"], /^demo: one version at most, got 2: v1 v2/],
    ["soak", ["--deployments", "lots"], /^soak: --deployments: "lots" is not a whole number >= 1/],
  ] as const)("%s %j names what is wrong and exits 2", (script, args, message) => {
    const r = run(script, [...args]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/\nusage: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
