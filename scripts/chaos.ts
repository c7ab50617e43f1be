// `npm run chaos -- --runs N --seed S`: N randomised fault scenarios against
// real processes (issue 6). Run i uses seed S+i, so `--seed S+i --runs 1`
// replays it exactly (same stack, deployments, faults and moments; process
// timing still varies). After each run every invariant of DESIGN.md is
// checked and printed; the report (default bench/chaos-report.json) gives
// runs, faults by kind and violations per invariant with the seed to replay.
//
//   node dist/scripts/chaos.js [--runs 20] [--seed 1] [--out <file>]
//        [--minutes M]   stop starting new runs after M minutes
//        [--keep]        keep the run directories of failing runs
//        [--verbose]     print each run's timeline
//        [--dry-run]     print each run's plan (stack, faults, canary waves) and run nothing
import { execFileSync } from "node:child_process";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { check, COMPLETION_SLACK_MS, INVARIANTS, settle, START_RACE_TOLERANCE_MS, type Invariant, type Violation } from "./chaos/checks.js";
import { FAULT_KINDS, planScenario, Scenario, type FaultKind } from "./chaos/scenario.js";
import { ACK_WAIT_MS, AGENT_LIVE_MS, APPLY_GRACE_MS, ChaosStack, HEARTBEAT_MS, ROOT, SWEEP_MS } from "./chaos/stack.js";
import { parseCli, usageError } from "./lib/cli.js";

interface RunReport {
  seed: number;
  primary: FaultKind;
  faults: { kind: FaultKind; on?: string; injected: boolean; note?: string }[];
  stack: string;
  deployments: { key: string; id?: string; state?: string; tookMs?: number; boundMs?: number; targets?: Record<string, string> }[];
  outageMs: number;
  durationMs: number;
  violations: Violation[];
  /** How many cases of each invariant the run checked. */
  checked?: Record<Invariant, number>;
  nearMisses: string[];
  harnessError?: string;
  /** Left over after the run: a consumer still holding commands or a journal entry not reported (a liveness finding, not one of the invariants). */
  unsettled?: string;
  timeline?: string[];
}

const USAGE = "usage: npm run chaos -- [--runs N] [--seed S] [--minutes M] [--out FILE] [--keep] [--verbose] [--dry-run]\n  run i uses seed S+i; --seed S+i --runs 1 replays it exactly";

const { values: args } = parseCli("chaos", USAGE, {
  runs: { type: "string", default: "20" },
  seed: { type: "string", default: "1" },
  out: { type: "string", default: resolve(ROOT, "bench/chaos-report.json") },
  minutes: { type: "string" },
  keep: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
});

async function oneRun(seed: number): Promise<RunReport> {
  const t0 = Date.now();
  const plan = planScenario(seed);
  const report: RunReport = {
    seed,
    primary: plan.faults[0]!.kind,
    faults: [],
    stack: `${plan.clustered ? "3-node cluster R3" : "1 nats-server"}, ${plan.coordinators} coordinator(s), ${plan.agents.length} agents`,
    deployments: [],
    outageMs: 0,
    durationMs: 0,
    violations: [],
    nearMisses: [],
  };
  let stack: ChaosStack | undefined;
  let scenario: Scenario | undefined;
  try {
    stack = await ChaosStack.start({
      clustered: plan.clustered,
      coordinators: plan.coordinators,
      agents: plan.agents,
      ...(plan.stopAfterClaim ? { stopAfterClaim: plan.stopAfterClaim } : {}),
      ...(plan.maxPayload ? { maxPayload: plan.maxPayload } : {}),
      ...(plan.clockOffsets ? { clockOffsets: plan.clockOffsets } : {}),
      ...(plan.dropRaceReplies ? { dropRaceReplies: plan.dropRaceReplies } : {}),
      ...(plan.killBeforeJournal ? { killBeforeJournal: plan.killBeforeJournal } : {}),
    });
    scenario = new Scenario(stack, plan);
    const outcome = await scenario.run();
    const unsettled = await settle(stack);
    if (unsettled) {
      report.unsettled = unsettled;
      scenario.note(`not settled: ${unsettled}`);
    }
    const { violations, nearMisses, checked } = await check(stack, outcome);
    report.violations = violations;
    report.checked = checked;
    report.nearMisses = nearMisses;
    report.outageMs = outcome.outageMs;
    report.deployments = outcome.deployments.map((d) => ({
      key: d.key,
      id: d.id,
      state: d.state,
      tookMs: d.finishedAtMs !== undefined && d.createdAtMs !== undefined ? d.finishedAtMs - d.createdAtMs : undefined,
      boundMs: d.boundMs,
      targets: d.targets,
    }));
  } catch (err) {
    report.harnessError = err instanceof Error ? (err.stack ?? err.message) : String(err);
  } finally {
    report.faults = plan.faults.map((f) => ({ kind: f.kind, on: f.on, injected: f.injected, ...(f.note ? { note: f.note } : {}) }));
    report.timeline = scenario?.log;
    const failed = report.violations.length > 0 || report.harnessError !== undefined || report.unsettled !== undefined;
    if (stack) {
      if (failed && args.keep) {
        await mkdir(join(stack.dir, "logs"), { recursive: true });
        for (const p of [...stack.nats, ...stack.coordinators, ...stack.agents.values()]) await writeFile(join(stack.dir, "logs", `${p.name}.log`), p.logs());
        console.log(`  kept ${stack.dir}`);
      }
      await stack.stop(failed && args.keep).catch(() => undefined);
    }
    report.durationMs = Date.now() - t0;
  }
  return report;
}

function summarize(runs: RunReport[]) {
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, { planned: 0, injected: 0 }])) as Record<FaultKind, { planned: number; injected: number }>;
  for (const r of runs) for (const f of r.faults) {
    faults[f.kind].planned++;
    if (f.injected) faults[f.kind].injected++;
  }
  const invariants = Object.fromEntries(
    (Object.keys(INVARIANTS) as Invariant[]).map((k) => {
      const bad = runs.filter((r) => r.violations.some((v) => v.invariant === k));
      const checked = runs.reduce((s, r) => s + (r.checked?.[k] ?? 0), 0);
      return [k, { description: INVARIANTS[k], checked, violations: bad.reduce((s, r) => s + r.violations.filter((v) => v.invariant === k).length, 0), seeds: bad.map((r) => r.seed) }];
    }),
  ) as Record<Invariant, { description: string; checked: number; violations: number; seeds: number[] }>;
  const states: Record<string, number> = {};
  for (const r of runs) for (const d of r.deployments) states[d.state ?? "not created"] = (states[d.state ?? "not created"] ?? 0) + 1;
  return {
    runs: runs.length,
    deployments: runs.reduce((s, r) => s + r.deployments.length, 0),
    deploymentStates: states,
    faults,
    invariants,
    totalViolations: runs.reduce((s, r) => s + r.violations.length, 0),
    nearMisses: runs.reduce((s, r) => s + r.nearMisses.length, 0),
    unsettled: runs.filter((r) => r.unsettled).map((r) => ({ seed: r.seed, what: r.unsettled })),
    harnessErrors: runs.filter((r) => r.harnessError).map((r) => ({ seed: r.seed, error: r.harnessError!.split("\n")[0] })),
    meanRunS: runs.length ? Math.round(runs.reduce((s, r) => s + r.durationMs, 0) / runs.length / 100) / 10 : 0,
  };
}

/** The code the run tested (its report says so), or "unknown" outside a git checkout. */
const COMMIT = (() => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: dirname(fileURLToPath(import.meta.url)), stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return "unknown";
  }
})();

/** The report as written to --out: after every run (a long run stopped early still leaves one), and at the end. */
function report(runs: RunReport[], summary: ReturnType<typeof summarize>, startedAt: Date, seed0: number, n: number): object {
  return {
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
    seed: seed0,
    requestedRuns: n,
    commit: COMMIT,
    settings: {
      agentLiveMs: AGENT_LIVE_MS,
      sweepIntervalMs: SWEEP_MS,
      heartbeatMs: HEARTBEAT_MS,
      ackWaitMs: ACK_WAIT_MS,
      applyTimeoutGraceMs: APPLY_GRACE_MS,
      deliveryTimeoutMs: "3000-5000",
      applyTimeoutMs: "4000-7000",
      completionSlackMs: COMPLETION_SLACK_MS,
      startRaceToleranceMs: START_RACE_TOLERANCE_MS,
    },
    summary,
    runs,
  };
}

async function writeReport(out: object): Promise<void> {
  await mkdir(dirname(args.out), { recursive: true });
  const tmp = `${args.out}.tmp`;
  await writeFile(tmp, JSON.stringify(out, null, 2) + "\n");
  await rename(tmp, args.out);
}

/** One line per plan (--dry-run): what a seed would run. */
function describePlan(p: ReturnType<typeof planScenario>): string {
  const faults = p.faults.map((f) => `${f.kind}${f.on ? `(${f.on}${f.deployment ? ` in ${f.deployment}` : ""})` : ""}`).join(" + ");
  const deps = p.deployments.map((d) => `${d.key} ${d.app} c=${d.maxConcurrency} f=${d.maxFailures}${d.canary ? ` canary ${"count" in d.canary ? d.canary.count : `${d.canary.percent}%`}` : ""}${d.cancelAfterMs !== undefined ? " cancelled" : ""}${d.bundle ? " bundle" : ""}`).join(", ");
  return `plan seed=${p.seed} [${p.clustered ? "3-node cluster R3" : "1 nats-server"}, ${p.coordinators} coordinator(s), ${p.agents.length} agents] ${faults} | ${deps}`;
}

async function main(): Promise<void> {
  const n = Number(args.runs);
  const seed0 = Number(args.seed);
  if (!Number.isInteger(n) || n < 1) usageError("chaos", USAGE, `--runs: "${args.runs}" is not a whole number of runs >= 1`);
  if (!Number.isInteger(seed0)) usageError("chaos", USAGE, `--seed: "${args.seed}" is not an integer`);
  const minutes = args.minutes === undefined ? undefined : Number(args.minutes);
  if (minutes !== undefined && !(minutes > 0)) usageError("chaos", USAGE, `--minutes: "${args.minutes}" is not a positive number of minutes`);
  const stopAt = minutes !== undefined ? Date.now() + minutes * 60_000 : Infinity;
  if (args["dry-run"]) {
    for (let i = 0; i < n; i++) console.log(describePlan(planScenario(seed0 + i)));
    return;
  }
  const startedAt = new Date();
  const runs: RunReport[] = [];
  console.log(`chaos: ${n} run(s) from seed ${seed0}; replay run S with --seed S --runs 1`);
  for (let i = 0; i < n && Date.now() < stopAt; i++) {
    const r = await oneRun(seed0 + i);
    runs.push(r);
    const faults = r.faults.map((f) => `${f.kind}${f.on ? `(${f.on})` : ""}${f.injected ? "" : " [not injected]"}`).join(" + ");
    const deps = r.deployments.map((d) => `${d.key} ${d.state ?? "-"}${d.tookMs !== undefined ? ` ${(d.tookMs / 1000).toFixed(1)}s` : ""}`).join(", ");
    const verdict = r.harnessError ? "HARNESS ERROR" : r.violations.length ? `${r.violations.length} VIOLATION(S)` : "ok";
    console.log(`run seed=${r.seed} ${(r.durationMs / 1000).toFixed(1)}s [${r.stack}] ${faults} | ${deps} | ${verdict}`);
    for (const v of r.violations) console.log(`  ✗ ${v.invariant}: ${v.detail}`);
    for (const m of r.nearMisses) console.log(`  ~ near miss: ${m}`);
    if (r.unsettled) console.log(`  ? unsettled: ${r.unsettled}`);
    if (r.harnessError) console.log(`  ! ${r.harnessError.split("\n").slice(0, 3).join("\n    ")}`);
    if ((args.verbose || r.violations.length || r.harnessError) && r.timeline) for (const l of r.timeline) console.log(`    ${l}`);
    await writeReport({ ...report(runs, summarize(runs), startedAt, seed0, n), partial: true });
  }
  const summary = summarize(runs);
  console.log("\ninvariant                    checked violations  seeds");
  for (const [k, x] of Object.entries(summary.invariants)) console.log(`${k.padEnd(28)} ${String(x.checked).padStart(7)} ${String(x.violations).padStart(10)}  ${x.seeds.join(",")}`);
  console.log("\nfault kind                          planned injected");
  for (const [k, x] of Object.entries(summary.faults)) console.log(`${k.padEnd(36)} ${String(x.planned).padStart(7)} ${String(x.injected).padStart(8)}`);
  console.log(`\nruns ${summary.runs}, deployments ${summary.deployments} ${JSON.stringify(summary.deploymentStates)}, violations ${summary.totalViolations}, near misses ${summary.nearMisses}, unsettled runs ${summary.unsettled.length}, harness errors ${summary.harnessErrors.length}, mean run ${summary.meanRunS}s`);
  await writeReport(report(runs, summary, startedAt, seed0, n));
  console.log(`report: ${args.out}`);
  process.exitCode = summary.totalViolations > 0 || summary.harnessErrors.length > 0 ? 1 : 0;
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
