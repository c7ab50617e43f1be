// Regression (found by the fault suite, issue 6): in a 3-server cluster,
// killing the DEPLOY_EVENTS stream leader lost the outstanding pulls of the
// consumers led there. The clients noticed only when the pull expired (30 s
// by default): an agent got no command for that long (its targets TIMED_OUT,
// seed 1) and the coordinators saw no event for that long, so the KV
// projection of a finished deployment trailed its stream (kv-equals-fold,
// seed 1030). The coordinator's pulls now expire after 5 s; an agent pulls
// again as soon as its consumer elects a new leader (an advisory), so its
// pulls can last 30 s (test/cluster.test.ts checks the step-down case).
// Replays both seeds through the suite and expects no violation and nothing
// left unsettled.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const CHAOS = join(resolve(import.meta.dirname, ".."), "dist/scripts/chaos.js");

interface Report {
  summary: { totalViolations: number; unsettled: { seed: number; what: string }[]; harnessErrors: unknown[] };
  runs: { seed: number; faults: { kind: string; injected: boolean }[]; violations: unknown[] }[];
}

describe("stream leader lost in a 3-server cluster", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // 3054: the leader of DEPLOY_COMMANDS lost while commands went out; an
  // early command publish rejected unhandled and ended the coordinator.
  for (const seed of [1, 1030, 3054]) {
    it(`chaos seed ${seed}: no violation, every agent and coordinator keeps consuming`, { timeout: 5 * 60_000 }, async () => {
      dir ??= await mkdtemp(join(tmpdir(), "chaos-regress-"));
      const out = join(dir, `seed-${seed}.json`);
      const stdout = await new Promise<string>((res) => {
        execFile(process.execPath, [CHAOS, "--runs", "1", "--seed", String(seed), "--out", out], { timeout: 4 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (_e, so, se) => res(so + se));
      });
      console.log(stdout);
      const r = JSON.parse(await readFile(out, "utf8")) as Report;
      expect(r.runs[0]!.faults.find((f) => f.kind === "cluster-stream-leader-kill")?.injected).toBe(true);
      expect(r.summary.harnessErrors).toEqual([]);
      expect(r.runs[0]!.violations).toEqual([]);
      expect(r.summary.unsettled).toEqual([]);
    });
  }
});
