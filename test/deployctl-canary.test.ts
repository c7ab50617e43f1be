// deployctl promote, pause, resume, rollback and the canary / auto_revert
// flags of deploy, end to end: the BUILT CLI (dist/) as a child process
// against a real stack (nats-server, a coordinator, three agents). No timing
// thresholds: every wait is "until", and what must not happen is read from a
// state the fold guarantees (nothing is dispatched while paused, nor beyond
// the canary wave before a promote).
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { CLI, deploymentIdOf, runCli, shown, shQuote, startShell, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const stateOf = (d: DeploymentMsg, agentId: string): string => d.targets?.find((t) => t.agentId === agentId)?.state ?? "";

describe("deployctl canary, promote, pause, resume, auto_revert and rollback", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  /** `deployctl deploy --executable` of web to prod: each agent runs the stack's deploy script. */
  const deploy = (version: string, ...flags: string[]): Promise<CliResult> => cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", version, ...flags]);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-canary-"));
    // A deploy executable that fails on a2 for versions starting with "bad":
    // which target fails, and that a revert to a good version succeeds, is
    // then decided by the version deployed, not by a control file raced
    // against the revert the coordinator starts at once.
    const script = join(work, "deploy.sh");
    await writeFile(
      script,
      '#!/usr/bin/env bash\necho "applying $DEPLOY_VERSION on $DEPLOY_AGENT_ID"\ncase "$DEPLOY_AGENT_ID/$DEPLOY_VERSION" in a2/bad*) echo "validation failed" >&2; exit 3;; */slow*) echo migrating; sleep 60;; esac\necho done\n',
    );
    await chmod(script, 0o755);
    stack = await Stack.start({ agents: [] });
    for (const id of ["a1", "a2", "a3"]) await stack.startAgent(id, { apps: { web: { deploy: script } } });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("deploy --canary 1 --detach waits after its canary; watch says so and what to run; promote lets it go on to SUCCEEDED", async () => {
    const created = await deploy("v1", "--canary", "1", "--max-concurrency", "3", "--detach");
    expect(created.code, shown(created)).toBe(0);
    const id = deploymentIdOf(created);
    expect((await client.get(id)).canaryTargets).toEqual(["a1"]);

    const watch = startShell(`node ${shQuote(CLI)} watch ${id}`, env);
    await watch.waitFor(new RegExp(`deployment\\.canary_done .*canary wave of 1 succeeded; waiting for a promote \\(deployctl promote ${id}\\)`));
    const waiting = await until("awaiting promotion", async () => {
      const g = await client.get(id);
      return g.awaitingPromotion ? g : undefined;
    });
    // Only the wave ran: the fold dispatches nothing else before a promote.
    expect(stateOf(waiting, "a2")).toBe("TARGET_STATE_PENDING");

    const got = await cli(["get", id]);
    expect(got.code, shown(got)).toBe(0);
    expect(got.stdout).toContain(`canary a1: succeeded; awaiting promotion: deployctl promote ${id}`);
    expect(got.stdout).toMatch(/strategy max_concurrency 3, max_failures 0, .*, canary 1, max_pause 86400s/);
    const listed = await cli(["list", "--app", "web"]);
    expect(listed.stdout).toMatch(new RegExp(`${id} .* RUNNING \\(awaiting promotion\\)`));

    const promoted = await cli(["promote", id]);
    expect(promoted.code, shown(promoted)).toBe(0);
    expect(promoted.stdout).toBe(`promoted ${id}: the rollout goes on to every target (promoted by anonymous (development mode)); follow with: deployctl watch ${id}\n`);

    const watched = await watch.done;
    expect(watched.code, shown(watched)).toBe(0);
    expect(watched.stdout).toMatch(/deployment\.promoted +- +RUNNING +promoted by anonymous \(development mode\): going on to every target/);
    expect(watched.stdout).toContain("canary a1: promoted by anonymous (development mode)");
    expect(watched.stdout).toMatch(/SUCCEEDED: 3 of 3 target\(s\) succeeded/);

    // Again: nothing changes, and it says so; --json is the Deployment in proto3 JSON.
    const again = await cli(["promote", id]);
    expect(again.stdout).toBe(`${id} was already promoted by anonymous (development mode) (now SUCCEEDED)\n`);
    const json = await cli(["promote", id, "--json"]);
    expect(json.code, shown(json)).toBe(0);
    const doc = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ id, state: "DEPLOYMENT_STATE_SUCCEEDED", promotedBy: "anonymous (development mode)", canaryTargets: ["a1"] });
    expect(doc.strategy).toMatchObject({ canary: 1, maxPause: "86400s" });
    expect(doc).not.toHaveProperty("awaitingPromotion"); // false: a proto3 default, left out
  });

  it("pause and resume: following goes on through both and names who did it; a promote while paused waits for the resume", async () => {
    const created = await deploy("v2", "--canary", "1", "--max-concurrency", "3", "--detach");
    expect(created.code, shown(created)).toBe(0);
    const id = deploymentIdOf(created);
    const watch = startShell(`node ${shQuote(CLI)} watch ${id}`, env);
    await watch.waitFor(/deployment\.canary_done/);

    const paused = await cli(["pause", id, "--reason", "looking at graphs"]);
    expect(paused.code, shown(paused)).toBe(0);
    expect(paused.stdout).toBe(
      `paused ${id} (by anonymous (development mode)): running applies go on, nothing new starts. Resume with: deployctl resume ${id}. ` +
        "If it stays paused longer than max_pause 86400s, what is left is cancelled.\n",
    );
    await watch.waitFor(new RegExp(`deployment\\.paused +- +RUNNING +paused by anonymous \\(development mode\\): looking at graphs; .*\\(deployctl resume ${id}\\)`));
    const twice = await cli(["pause", id]);
    expect(twice.stdout).toBe(`${id} was already paused by anonymous (development mode); resume with: deployctl resume ${id}\n`);

    // Promoted while paused: recorded, but nothing is dispatched until the resume.
    const promoted = await cli(["promote", id]);
    expect(promoted.code, shown(promoted)).toBe(0);
    await watch.waitFor(/deployment\.promoted/);
    const held = await client.get(id);
    expect(held.paused).toBe(true);
    expect(held.promotedBy).toBe("anonymous (development mode)");
    expect(stateOf(held, "a2")).toBe("TARGET_STATE_PENDING");
    const got = await cli(["get", id]);
    expect(got.stdout).toContain(`paused by anonymous (development mode): running applies go on, nothing new starts; resume with: deployctl resume ${id}`);
    expect(got.stdout).toContain("canary a1: promoted by anonymous (development mode)");
    expect((await cli(["list", "--app", "web"])).stdout).toMatch(new RegExp(`${id} .* RUNNING \\(paused\\)`));

    const resumed = await cli(["resume", id]);
    expect(resumed.code, shown(resumed)).toBe(0);
    expect(resumed.stdout).toBe(`resumed ${id}: dispatching goes on; follow with: deployctl watch ${id}\n`);
    const watched = await watch.done;
    expect(watched.code, shown(watched)).toBe(0);
    const order = ["deployment.canary_done", "deployment.paused", "deployment.promoted", "deployment.resumed", "deployment.finished"].map((t) => watched.stdout.indexOf(t));
    expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)), watched.stdout).toBe(true);
    expect(watched.stdout).toMatch(/deployment\.resumed +- +RUNNING +resumed by anonymous \(development mode\)/);

    const notPaused = await cli(["resume", id]);
    expect(notPaused.stdout).toBe(`${id} was already SUCCEEDED: nothing to resume\n`);
  });

  it("a FAILED deploy with --auto-revert names the deployment that reverts it and how to watch it; that one restores the release before", async () => {
    const r = await deploy("bad-v3", "--auto-revert");
    // The deployment failed: deploy's own exit code for it.
    expect(r.code, shown(r)).toBe(1);
    const id = deploymentIdOf(r);
    expect(r.stdout).toMatch(/FAILED: .*; auto_revert: bringing 2 changed target\(s\) back to v2 \(release v2-/);
    const m = /^auto_revert: deployment (d-\S+) brings 2 target\(s\) of (d-\S+) back to v2 \(release v2-\S+\); follow it with: deployctl watch (d-\S+)$/m.exec(r.stdout);
    expect(m, shown(r)).not.toBeNull();
    const revertId = m![1]!;
    expect(m![2]).toBe(id);
    expect(m![3]).toBe(revertId);

    const got = await cli(["get", id]);
    expect(got.stdout).toContain(`reverted by ${revertId} (auto_revert); follow it with: deployctl watch ${revertId}`);
    expect(got.stdout).toMatch(/strategy .*, auto_revert/);

    const watched = await cli(["watch", revertId]);
    expect(watched.code, shown(watched)).toBe(0);
    expect(watched.stdout).toContain(`auto_revert of ${id})`);
    expect(watched.stdout).toMatch(new RegExp(`revert of ${id}: brings its changed targets back to v2 \\(release v2-\\S+, from d-\\S+\\)`));
    expect(watched.stdout).toMatch(/SUCCEEDED: restored web v2 \(release v2-/);
    const revertJson = JSON.parse((await cli(["get", revertId, "--json"])).stdout) as Record<string, unknown>;
    expect(revertJson).toMatchObject({ reverts: id, requestId: `revert.${id}`, requestedBy: "auto-revert", restores: { version: "v2" } });
    expect(JSON.parse((await cli(["get", id, "--json"])).stdout)).toMatchObject({ revertedBy: revertId, strategy: { autoRevert: true } });
  });

  it("rollback deploys the release before the desired one, follows it, and it becomes the desired release", async () => {
    // Desired now: v2 (the failed bad-v3 and its revert never became desired); before it, v1.
    const r = await cli(["rollback", "web", "prod", "--note", "v2 breaks logins"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout).toMatch(/^request id [0-9a-f-]{36} \(to retry safely, re-run with --request-id [0-9a-f-]{36}\)$/m);
    expect(r.stdout).toMatch(/^deployment d-\S+: rollback of web in prod to v1 \(release v1-\S+, from d-\S+\), 3 target\(s\)$/m);
    const id = deploymentIdOf(r);
    expect(r.stdout).toContain(`following ${id} (web v1 to prod, 3 target(s), rollback to v1 (release v1-`);
    expect(r.stdout).toMatch(/SUCCEEDED: restored web v1 \(release v1-/);
    expect(r.stdout).toMatch(/rollback: restores v1 \(release v1-\S+, from d-\S+\)/);
    const releases = await until("the rollback as the desired release", async () => {
      const x = await cli(["releases", "web", "prod"]);
      return x.stdout.includes(`(deployment ${id}, succeeded `) ? x : undefined;
    });
    expect(releases.stdout).toMatch(/desired release v1-/);
    // --to names an earlier release by its version: v2, which the rollback replaced.
    const to = await cli(["rollback", "web", "prod", "--to", "v2"]);
    expect(to.code, shown(to)).toBe(0);
    expect(to.stdout).toMatch(/^deployment d-\S+: rollback of web in prod to v2 \(release v2-\S+, from d-\S+\), 3 target\(s\)$/m);
    expect(to.stdout).toMatch(/SUCCEEDED: restored web v2 \(release v2-/);
  });

  it("refusals exit 2 with one line", async () => {
    // Its outcome does not matter here: only that it has no canary wave.
    const plain = await deploy("v4", "--detach");
    expect(plain.code, shown(plain)).toBe(0);
    const noWave = await cli(["promote", deploymentIdOf(plain)]);
    expect(noWave.code).toBe(2);
    expect(noWave.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: deployment d-\S+ has no canary wave to promote \(strategy\.canary is not set\)\n$/);
    const soakAlone = await deploy("v5", "--canary-soak", "5m");
    expect(soakAlone.code).toBe(2);
    expect(soakAlone.stderr).toBe("deployctl: --canary-soak needs --canary (the wave it lets soak)\n");
    const badDuration = await deploy("v5", "--canary", "1", "--max-pause", "1d");
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toMatch(/^deployctl: option '--max-pause <duration>' argument '1d' is invalid\. "1d" is not a duration such as 90s, 10m or 1h30m\n/);
    const nowhere = await cli(["rollback", "web", "nowhere", "--detach"]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: no deployment of app web to environment nowhere has succeeded/);
    const never = await cli(["rollback", "web", "prod", "--to", "v-never", "--detach"]);
    expect(never.code).toBe(2);
    expect(never.stderr).toMatch(/^deployctl: FAILED_PRECONDITION: to: "v-never" is neither the deployment id nor the version of a release of web in prod that the history keeps/);
  });

  it("--apply-timeout and --delivery-timeout set the deployment's timeouts: an apply longer than its timeout is killed and FAILS", async () => {
    // --wait-active: the deployment the refusals left may still run.
    const r = await deploy("slow-1", "--apply-timeout", "1500ms", "--delivery-timeout", "90s", "--max-concurrency", "3", "--wait-active", "2m");
    expect(r.code, shown(r)).toBe(1);
    expect(r.stdout).toMatch(/strategy max_concurrency 3, max_failures 0, delivery_timeout 90s, apply_timeout 1\.500s/);
    const d = await client.get(deploymentIdOf(r));
    expect(d.strategy?.applyTimeout).toEqual({ seconds: "1", nanos: 500_000_000 });
    expect(d.strategy?.deliveryTimeout).toEqual({ seconds: "90", nanos: 0 });
    for (const t of d.targets ?? []) {
      expect(t.state).toBe("TARGET_STATE_FAILED");
      expect(t.message).toMatch(/^killed after timeout of 1\d{3} ms/);
    }
    const tooLong = await deploy("v6", "--apply-timeout", "200h");
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/^deployctl: option '--apply-timeout <duration>' argument '200h' is invalid\. must be at most 168h \(7 days\)\n/);
  });
});
