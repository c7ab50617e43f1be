// The benchmark's quick variant (N = 10, fan-out and sequential) runs with
// the tests so it cannot rot. Its figures are printed, never asserted: timing
// goals live in `npm run bench` (see README "Performance").
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const BENCH = join(ROOT, "dist/scripts/bench.js");

interface QuickResults {
  shapes: { shape: string; n: number; floorMs: number; oursMs: number; ratio: number; oursState: string }[];
  api?: { create: { n: number; p99: number }; get: { n: number; p99: number } };
  footprint?: { idleAgentRssMb: number };
}

describe("bench --quick", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("completes both shapes and produces numbers", async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
    const out = join(dir, "results.json");
    const { stdout } = await new Promise<{ stdout: string }>((res, rej) => {
      execFile(process.execPath, [BENCH, "--quick", "--shape-timeout-s", "60", "--out", out], { timeout: 110_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? rej(new Error(`bench --quick failed: ${err.message}\n${stderr}`)) : res({ stdout }),
      );
    });
    console.log(stdout);
    const r = JSON.parse(await readFile(out, "utf8")) as QuickResults;
    expect(r.shapes.map((s) => `${s.shape}:${s.n}`)).toEqual(["fanout:10", "sequential:10"]);
    for (const s of r.shapes) {
      expect(s.oursState).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      for (const x of [s.floorMs, s.oursMs, s.ratio]) expect(Number.isFinite(x) && x > 0).toBe(true);
    }
    expect(r.api?.create.n).toBeGreaterThan(0);
    expect(Number.isFinite(r.api?.create.p99)).toBe(true);
    expect(Number.isFinite(r.footprint?.idleAgentRssMb)).toBe(true);
  }, 120_000);
});
