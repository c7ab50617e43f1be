// The fault kinds added with issue 16, one replayed seed each (they are
// drawn from their own generator, under a salt that keeps them out of the
// seeds the smoke run and the leader-loss regressions replay, so those
// replay exactly: scripts/chaos/scenario.ts ADDED_SALT). Each run must
// inject its kind, check its invariant where the run gives a case, and
// violate nothing.
// 10011 is also the regression of the clock-offset finding: a coordinator
// 2 min ahead timed out every dispatched target 7-21 ms after its dispatch
// (server-clock), before the coordinator judged time on the servers' clock.
// 20256: the check fix for a start that won before a cancel request.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const CHAOS = join(resolve(import.meta.dirname, ".."), "dist/scripts/chaos.js");

interface Report {
  summary: { totalViolations: number; unsettled: { seed: number; what: string }[]; harnessErrors: unknown[] };
  runs: { seed: number; faults: { kind: string; injected: boolean; note?: string }[]; violations: unknown[]; checked: Record<string, number> }[];
}

const CASES = [
  { seed: 10005, kind: "lost-race-reply", invariant: "lost-reply-recovered" },
  { seed: 10022, kind: "poison-event", invariant: "poison-skipped" },
  { seed: 10004, kind: "small-max-payload", invariant: "oversize-handled" },
  { seed: 10011, kind: "clock-offset", invariant: undefined },
  // A start won just before a cancel request, learned 2 s later (its reply
  // dropped): it may run after the cancel, within the start lease.
  { seed: 20256, kind: "lost-race-reply", invariant: "no-run-after-terminal" },
  // Heartbeats sent on time through a stalled link reached the server late:
  // the coordinator timed the started target out for silence, and the agent,
  // whose start lease counted gaps between sends, started it after that.
  { seed: 30015, kind: "lost-race-reply", invariant: "no-run-after-terminal" },
  // An agent killed between its stored start and its journal record (its
  // own generator: scripts/chaos/addedKinds.ts KILL_BEFORE_JOURNAL_SALT).
  { seed: 40075, kind: "agent-kill-before-journal", invariant: "interrupted-reported" },
];

describe("added fault kinds", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(`${c.kind} (seed ${c.seed}): injected, no violation`, { timeout: 5 * 60_000 }, async () => {
      dir ??= await mkdtemp(join(tmpdir(), "chaos-added-"));
      const out = join(dir, `seed-${c.seed}.json`);
      const stdout = await new Promise<string>((res) => {
        execFile(process.execPath, [CHAOS, "--runs", "1", "--seed", String(c.seed), "--out", out], { timeout: 4 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (_e, so, se) => res(so + se));
      });
      console.log(stdout);
      const r = JSON.parse(await readFile(out, "utf8")) as Report;
      const run = r.runs[0]!;
      expect(run.faults.find((f) => f.kind === c.kind)?.injected).toBe(true);
      expect(r.summary.harnessErrors).toEqual([]);
      expect(run.violations).toEqual([]);
      expect(r.summary.unsettled).toEqual([]);
      if (c.invariant) expect(run.checked[c.invariant]).toBeGreaterThan(0);
    });
  }
});
