// The benchmark's quick variant runs with the tests so it cannot rot: every
// part at tiny sizes (fan-out and sequential at N = 10 with the bare, apply
// and protocol floors, cold and warm; the scale case with 20 agents, its
// idle fleet and liveness; the API against the bare unary call; the peer;
// the cost of security: a fan-out of 10 and paced creates, off and on; a
// fan-out of 10 installing a 1 MB bundle, cold and warm).
// Its figures are printed, never asserted: timing goals live in
// `npm run bench` (docs/performance.md).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const BENCH = join(ROOT, "dist/scripts/bench.js");

interface Work {
  inPerTarget: number;
  apiPerTarget: number;
}
interface QuickResults {
  shapes: {
    shape: string;
    n: number;
    floorMs: number;
    applyFloorMs: number;
    protocolFloorMs?: number;
    oursMs: number;
    oursWarmMs?: number;
    ratioApply: number;
    ratioApplyWarm?: number;
    oursState: string;
    oursWarmState?: string;
    work: { bare?: Work; apply?: Work; ours?: Work; oursWarm?: Work };
  }[];
  scale?: { completed: boolean; completedWarm: boolean; coordinatorCpuS: number; natsServerCpuS: number; natsServerPeakRssMb: number; idle?: { cpuPct: Record<string, number>; liveAtEnd: number; n: number }; liveness?: { detectedMs?: number } };
  api?: { create: { n: number; p99: number }; get: { n: number; p99: number }; bareUnaryPublish: { n: number; p99: number } };
  ansible?: { skipped: string } | { runs: { hosts: number; ms: number }[] };
  footprint?: { idleAgentRssMb: number };
  bundleRollout?: { error?: string; n: number; ms: number; state: string; warmMs?: number; warmState?: string; work: { cold?: { outBytesPerTarget: number } } };
  security?: Record<"off" | "on", { error?: string; fanout: { ms: number; warmMs?: number; state: string; warmState?: string }; api: { create: { n: number; p99: number } } }>;
  goals: { goal: string; met: boolean | null; figure: string }[];
  durationS: number;
}

const finite = (x: number | undefined): boolean => typeof x === "number" && Number.isFinite(x) && x > 0;

describe("bench --quick", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs every part at tiny sizes and produces every column", async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
    const out = join(dir, "results.json");
    const { stdout } = await new Promise<{ stdout: string }>((res, rej) => {
      execFile(process.execPath, [BENCH, "--quick", "--shape-timeout-s", "60", "--scale-timeout-s", "60", "--out", out], { timeout: 290_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? rej(new Error(`bench --quick failed: ${err.message}\n${stderr}`)) : res({ stdout }),
      );
    });
    console.log(stdout);
    const r = JSON.parse(await readFile(out, "utf8")) as QuickResults;
    expect(r.shapes.map((s) => `${s.shape}:${s.n}`)).toEqual(["fanout:10", "sequential:10", "fanout:20"]);
    for (const s of r.shapes) {
      expect(s.oursState).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(s.oursWarmState).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      for (const x of [s.floorMs, s.applyFloorMs, s.oursMs, s.oursWarmMs, s.ratioApply, s.ratioApplyWarm]) expect(finite(x)).toBe(true);
      for (const w of [s.work.bare, s.work.apply, s.work.ours, s.work.oursWarm]) expect(finite(w?.inPerTarget)).toBe(true);
    }
    expect(finite(r.shapes[0]!.protocolFloorMs)).toBe(true);
    // The scale case (20 agents here): complete, with its resources, the idle fleet and liveness.
    expect(r.scale?.completed).toBe(true);
    expect(r.scale?.completedWarm).toBe(true);
    for (const x of [r.scale?.coordinatorCpuS, r.scale?.natsServerCpuS, r.scale?.natsServerPeakRssMb]) expect(finite(x)).toBe(true);
    expect(r.scale?.idle?.liveAtEnd).toBe(r.scale?.idle?.n);
    expect(Number.isFinite(r.scale?.idle?.cpuPct.natsServer)).toBe(true);
    expect(finite(r.scale?.liveness?.detectedMs)).toBe(true);
    expect(r.api?.create.n).toBeGreaterThan(0);
    expect(finite(r.api?.create.p99)).toBe(true);
    expect(finite(r.api?.bareUnaryPublish.p99)).toBe(true);
    expect(r.ansible).toBeDefined();
    expect(Number.isFinite(r.footprint?.idleAgentRssMb)).toBe(true);
    // The bundle rollout: every agent downloads the 1 MB bundle (the server delivered at least that much a target).
    expect(r.bundleRollout?.error).toBeUndefined();
    expect(r.bundleRollout?.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(r.bundleRollout?.warmState).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const x of [r.bundleRollout?.ms, r.bundleRollout?.warmMs]) expect(finite(x)).toBe(true);
    expect(r.bundleRollout?.work.cold?.outBytesPerTarget).toBeGreaterThan(1024 * 1024);
    expect(stdout).toMatch(/bundle rollout: fan-out 10, a 1 MB bundle/);
    // Security off and on: both complete, with their figures (the "on" run is production mode: a failure there is an error in the record).
    for (const mode of ["off", "on"] as const) {
      const m = r.security?.[mode];
      expect(m?.error, mode).toBeUndefined();
      expect(m?.fanout.state, mode).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(m?.fanout.warmState, mode).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      for (const x of [m?.fanout.ms, m?.fanout.warmMs, m?.api.create.p99]) expect(finite(x), mode).toBe(true);
    }
    expect(stdout).toMatch(/security: off vs on, same run/);
    // Every goal is printed with its figure and met / not met (or "-" when it has none, e.g. the peer).
    const goals = r.goals.map((g) => g.goal);
    for (const g of [/ours\/apply floor.*fan-out 10, cold/, /ours\/apply floor.*sequential 10, warm/, /agents complete/, /JetStream work/, /idle fleet: nats-server/, /idle fleet: coordinator/, /bare unary\+publish/, /round trips/, /peer/]) {
      expect(goals.some((x) => g.test(x))).toBe(true);
    }
    for (const g of r.goals) expect(g.figure.length).toBeGreaterThan(0);
    expect(stdout).toMatch(/total duration: \d+ s/);
  }, 300_000);
});
