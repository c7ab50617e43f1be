// Bundles in the fault suite: some deployments install a release (download,
// unpack, hooks, the atomic switch of `current`, the way back) instead of
// running the deploy executable, so that the agent kills and cut links land
// in the middle of an install too. The bundle's hooks keep the suite's
// records as deploy.sh does (scripts/chaos/stack.ts): "start" in the first
// hook of an install, the run's sleep split before and after the switch (so
// a kill during the apply lands on either side of it), "end" in the last,
// which fails where the agent is steered to fail (a failed validate: the
// way back to the previous release).
import { makeBundle } from "../lib/bundles.js";
import type { Rng } from "./prng.js";
import type { ScenarioPlan } from "./scenario.js";

/**
 * The bundles' generator salt: the first under which none of the seeds the
 * leader-loss regressions replay (1, 1030, 3054) draws a bundle, so those
 * replay what they recorded. The smoke seeds (7000-7019) may draw them.
 */
export const BUNDLE_SALT = 6;

/** Each deployment's chance of being a bundle (reverts install what they go back to). */
const BUNDLE_SHARE = 0.4;

/**
 * A kill during or after an apply's chance of waiting for a later
 * deployment of an app (when the run has one), whose earlier deployments
 * install the bundle too: the way back then has a previous release to go
 * to, rather than none as at a first install.
 */
const LATER_INSTALL_SHARE = 0.6;

/**
 * Marks deployments that install the run's bundle (PlannedDeployment.bundle).
 * In a run with one, an agent-kill-during-apply comes a drawn part of that
 * agent's sleep after the apply's start, rather than at once: in a bundle's
 * hooks, before the switch of `current` (nothing touched) or after it (the
 * record of the install in progress: the way back at the restart). A kill
 * during or after an apply may wait for a later deployment of an app
 * (Fault.deployment) whose earlier ones then install the bundle as well.
 */
export function planBundles(plan: ScenarioPlan, rng: Rng): void {
  for (const d of plan.deployments) if (rng.chance(BUNDLE_SHARE)) d.bundle = true;
  if (!plan.deployments.some((d) => d.bundle)) return;
  for (const f of plan.faults) {
    if (f.kind === "agent-kill-during-apply" && f.on) f.afterMs = rng.int(0, Math.floor((plan.sleeps[f.on] ?? 0) * 900));
  }
  // Drawn after the above, so a seed recorded before draws what it drew.
  const later = plan.deployments.filter((d, i) => plan.deployments.slice(0, i).some((e) => e.app === d.app));
  if (later.length === 0) return;
  for (const f of plan.faults) {
    if (f.kind !== "agent-kill-during-apply" && f.kind !== "agent-kill-after-apply") continue;
    if (!rng.chance(LATER_INSTALL_SHARE)) continue;
    const d = rng.pick(later);
    for (const e of plan.deployments.slice(0, plan.deployments.indexOf(d) + 1)) if (e.app === d.app) e.bundle = true;
    f.deployment = d.key;
  }
}

/**
 * How long an apply of a deployment cancelled with kill_running (its version
 * ends in -hang: scenario.ts cancelKill) sleeps, in each hook here and in the
 * deploy executable (stack.ts): longer than any apply timeout of the suite.
 */
export const KILL_HANG_S = 60;

const HEAD = ["#!/usr/bin/env bash", "set -u", 'rec="$CHAOS_RECORDS/$DEPLOY_AGENT_ID.log"', 'ctl="$CHAOS_CONTROL/$DEPLOY_AGENT_ID"', `case "$DEPLOY_VERSION" in *-hang) half=${KILL_HANG_S} ;; *) half=$(awk "BEGIN { print $(cat "$ctl.sleep" 2>/dev/null || echo 0.3) / 2 }") ;; esac`];

/** The hooks; only the new release's (context "install") count as the apply, never the previous one's start on the way back. */
const HOOKS: Record<string, string[]> = {
  before_install: ['echo "start $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N)" >> "$rec"', 'echo "installing $DEPLOY_APP $DEPLOY_VERSION as $DEPLOY_RELEASE"', 'sleep "$half"'],
  stop: ['echo "stopping $DEPLOY_RELEASE"'],
  start: ['[ "$DEPLOY_HOOK_CONTEXT" = install ] || { echo "starting $DEPLOY_RELEASE again ($DEPLOY_HOOK_CONTEXT)"; exit 0; }', 'sleep "$half"'],
  validate: [
    'if [ -f "$ctl.fail" ]; then echo "end $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N) fail" >> "$rec"; echo "validate failed" >&2; exit 3; fi',
    'echo "end $DEPLOY_ID $DEPLOY_AGENT_ID $(date +%s%3N) ok" >> "$rec"',
  ],
};

/** The run's bundle (gzip'd tar): the same for every deployment, whose version names the release. */
export function chaosBundle(): Promise<Buffer> {
  const manifest = ["version: 1", "hooks:", ...Object.keys(HOOKS).map((h) => `  ${h}: { run: hooks/${h}.sh, timeout: 30s }`), "keep_releases: 3", ""].join("\n");
  return makeBundle([
    { name: "deploy.yaml", content: manifest },
    ...Object.entries(HOOKS).map(([hook, body]) => ({ name: `hooks/${hook}.sh`, content: [...HEAD, ...body, ""].join("\n"), mode: 0o755 })),
  ]);
}
