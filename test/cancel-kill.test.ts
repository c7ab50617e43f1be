// CancelDeployment with kill_running (deployctl cancel --kill): the applies
// in flight are killed, not waited for; and with revert (deployctl cancel
// --revert): "stop and roll back", the targets it changed brought back to
// the release desired before it. End to end: the built CLI against a real
// stack (nats-server, a coordinator, two agents whose deploy executable
// hangs). The agents' own look for the kill comes every 10 minutes here, so
// every kill is the coordinator's kill notice at work; the last describe
// takes the notice away and sees the look kill.
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentConfig } from "../services/agent/src/config.js";
import { watchForKill, type HandlerDeps } from "../services/agent/src/handleCommand.js";
import { Registration, type KillLookReason } from "../services/agent/src/registration.js";
import { HDR_KILL_REQUESTED, HEARTBEAT_REQUEST_SUBJECT, createLogger, killNotice } from "../services/shared/src/index.js";
import { startNatsServer } from "./helpers/nats-server.js";
import type { DeployClient, DeploymentMsg } from "./helpers/client.js";
import { deploymentIdOf, runCli, shown, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { LinkProxy } from "../scripts/chaos/proxy.js";
import { until } from "./helpers/wait.js";

const KILLED = "killed: the deployment was cancelled with kill_running by anonymous (development mode)";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A deploy executable in `work` whose apply hangs: it starts `sleep 600` and writes its pid to <work>/<agent>.pid. */
async function hangingScript(work: string): Promise<string> {
  const script = join(work, "deploy.sh");
  await writeFile(script, `#!/usr/bin/env bash\nsleep 600 &\necho $! > ${JSON.stringify(work)}/$DEPLOY_AGENT_ID.pid\nwait\n`);
  await chmod(script, 0o755);
  return script;
}

/** Waits until process `pid` has exited. */
function gone(pid: number): Promise<true> {
  return until(`sleep ${pid} gone`, () => Promise.resolve(isAlive(pid) ? undefined : true));
}

/** Deployment `id`, of one target, ends CANCELLED with that target's apply killed, and the apply's process `pid` is gone. */
async function expectKilled(client: DeployClient, id: string, pid: number): Promise<void> {
  const ended = await client.waitTerminal(id);
  expect(ended.state).toBe("DEPLOYMENT_STATE_CANCELLED");
  expect(ended.targets?.map((t) => t.message)).toEqual([KILLED]);
  await gone(pid);
}

/** The pid of agent `id`'s hanging apply (hangingScript), once it runs. */
function applyingPid(work: string, id: string): Promise<number> {
  return until("applying, its sleep started", async () => {
    const text = await readFile(join(work, `${id}.pid`), "utf8").catch(() => "");
    return text.trim() === "" ? undefined : Number(text.trim());
  });
}

describe("cancel --kill and --revert", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  /** A deployment cancelled (without revert) before later ones succeeded. */
  let cancelledEarly = "";
  /** A deployment of web to a1 and a2 whose applies hang (each leaves its sleep's pid in <work>/<agent>.pid), once both apply. */
  const hanging = async (version: string): Promise<string> => {
    for (const a of ["a1", "a2"]) await rm(join(work, `${a}.pid`), { force: true });
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", version, "--max-concurrency", "2", "--detach"]);
    expect(r.code, shown(r)).toBe(0);
    const id = deploymentIdOf(r);
    await until("both applying, their sleep started", async () => {
      const d = await client.get(id);
      const applying = d.targets?.filter((t) => t.state === "TARGET_STATE_APPLYING").length;
      const pids = await Promise.all(["a1", "a2"].map((a) => readFile(join(work, `${a}.pid`), "utf8").catch(() => "")));
      return applying === 2 && pids.every((p) => p.trim() !== "") ? true : undefined;
    });
    return id;
  };
  const pidsOf = async (): Promise<number[]> => Promise.all(["a1", "a2"].map(async (a) => Number((await readFile(join(work, `${a}.pid`), "utf8")).trim())));
  const ended = (id: string): Promise<DeploymentMsg> =>
    until(`${id} ended`, async () => {
      const d = await client.get(id);
      return d.state === "DEPLOYMENT_STATE_CANCELLED" || d.state === "DEPLOYMENT_STATE_FAILED" || d.state === "DEPLOYMENT_STATE_SUCCEEDED" ? d : undefined;
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "cancel-kill-"));
    const script = join(work, "deploy.sh");
    // The deploy executable's sleep runs in its process group, as a hook's child would.
    // A version named fix-* applies at once (the replacement of a hung one).
    await writeFile(
      script,
      `#!/usr/bin/env bash\necho "applying $DEPLOY_VERSION"\ncase "$DEPLOY_VERSION" in fix-*) exit 0;; esac\nsleep 600 &\necho $! > ${JSON.stringify(work)}/$DEPLOY_AGENT_ID.pid\nwait\n`,
    );
    await chmod(script, 0o755);
    stack = await Stack.start({ agents: [], agentEnv: { DEPLOY_AGENT_KILL_LOOK_MS: "600000" } });
    for (const id of ["a1", "a2"]) await stack.startAgent(id, { apps: { web: { deploy: script } } });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("cancel --revert with no release desired before is refused, naming why, and records nothing", async () => {
    const id = await hanging("v0");
    const r = await cli(["cancel", id, "--revert"]);
    expect(r.code, shown(r)).toBe(2);
    expect(r.stderr).toContain(`deployment ${id} cannot be reverted: no deployment of web to prod succeeded before it, so there is no release to go back to; cancel it without revert`);
    const after = await client.get(id);
    expect(after.cancelRequested).toBe(false);
    expect(after.state).toBe("DEPLOYMENT_STATE_RUNNING");
    // Cleared out of the way, and a --revert asked of it once it ended is refused too.
    expect((await cli(["cancel", id, "--kill"])).code).toBe(0);
    expect((await ended(id)).state).toBe("DEPLOYMENT_STATE_CANCELLED");
    // One cancel recorded: the kill's; the refused revert wrote nothing.
    const events: string[] = [];
    await client.watch(id, 0, (e) => events.push(e.type ?? "")).done;
    expect(events.filter((t) => t === "deployment.cancel_requested")).toHaveLength(1);
    const late = await cli(["cancel", id, "--revert"]);
    expect(late.code, shown(late)).toBe(2);
    expect(late.stderr).toContain(`deployment ${id} cannot be reverted: it is CANCELLED already; a cancel with revert applies to a deployment still running; to bring back what it changed, deployctl revert ${id}`);
  });

  it("kills the applies in flight: the targets end FAILED (killed), the deployment CANCELLED, their processes are gone", async () => {
    const id = await hanging("v1");
    const pids = await pidsOf();
    const r = await cli(["cancel", id, "--kill", "--reason", "bad build"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout).toContain(`cancel requested for ${id}: now RUNNING; targets not yet started are cancelled, in-flight applies are killed`);
    const d = await ended(id);
    expect(d.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(d.killRequested).toBe(true);
    for (const t of d.targets ?? []) {
      expect(t.state, t.agentId).toBe("TARGET_STATE_FAILED");
      expect(t.message, t.agentId).toBe(KILLED);
    }
    for (const pid of pids) await gone(pid);
    const got = await cli(["get", id]);
    expect(got.stdout).toContain("cancel requested by anonymous (development mode), with kill_running (the applies in flight are killed)");
    const watched = await cli(["watch", id, "--after", "0"]);
    expect(watched.stdout).toMatch(/deployment\.cancel_requested .*bad build; kill_running: the applies in flight are killed/);
  });

  it("a cancel without it lets the applies run; --kill asked after it kills them", async () => {
    const id = await hanging("v2");
    cancelledEarly = id;
    const plain = await cli(["cancel", id]);
    expect(plain.code, shown(plain)).toBe(0);
    expect(plain.stdout).toContain("in-flight applies finish (--kill stops them)");
    // A kill notice alone kills nothing: the agents look, and the stored
    // cancel did not ask for it. After their three looks they still apply.
    const nc = await connect({ servers: stack.nats.url });
    try {
      nc.publish(HEARTBEAT_REQUEST_SUBJECT, killNotice(id));
      await nc.flush();
    } finally {
      await nc.close();
    }
    await new Promise((r) => setTimeout(r, 3000));
    const still = await client.get(id);
    expect(still.cancelRequested).toBe(true);
    expect(still.killRequested ?? false).toBe(false);
    expect(still.targets?.map((t) => t.state)).toEqual(["TARGET_STATE_APPLYING", "TARGET_STATE_APPLYING"]);

    const kill = await cli(["cancel", id, "--kill"]);
    expect(kill.code, shown(kill)).toBe(0);
    const d = await ended(id);
    expect(d.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(d.targets?.map((t) => t.message)).toEqual([KILLED, KILLED]);
    // Asked again: nothing more is recorded.
    const events: string[] = [];
    await client.watch(id, 0, (e) => events.push(e.type ?? "")).done;
    expect(events.filter((t) => t === "deployment.cancel_requested")).toHaveLength(2);
    const again = await cli(["cancel", id, "--kill"]);
    expect(again.stdout).toBe(`${id} was already CANCELLED: nothing to cancel\n`);
  });

  it("deploy --kill-active replaces a deployment hung in its applies: it is cancelled with kill_running, its applies killed, and the new one runs", async () => {
    const id = await hanging("v3");
    const pids = await pidsOf();
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "fix-v3", "--max-concurrency", "2", "--kill-active"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout).toContain(`cancelled deployment ${id} (--kill-active): targets not yet started are cancelled, applies in flight are killed`);
    const fixed = await client.get(deploymentIdOf(r));
    expect(fixed.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const old = await client.get(id);
    expect(old.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(old.killRequested).toBe(true);
    expect(old.cancelledBy).toBe("anonymous (development mode)");
    expect(old.targets?.map((t) => t.message)).toEqual([KILLED, KILLED]);
    for (const pid of pids) await gone(pid);
  });

  it("cancel --kill --revert stops the deployment and brings the targets it changed back to the release desired before it", async () => {
    // The kill-active case left fix-v3 desired.
    const desired = (await client.release("web", "prod")).desired;
    expect(desired?.version).toBe("fix-v3");
    const id = await hanging("v4");
    const r = await cli(["cancel", id, "--kill", "--revert", "--reason", "error rate up"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`cancel requested for ${id}: .*in-flight applies are killed.*; then the targets it changed go back to fix-v3 \\(release fix-v3-\\S+\\)`));
    const d = await ended(id);
    expect(d.state).toBe("DEPLOYMENT_STATE_CANCELLED");
    expect(d.cancelRevertsTo?.deploymentId).toBe(desired?.deploymentId);
    expect(d.message).toMatch(/^cancelled: error rate up; revert: bringing 2 changed target\(s\) back to fix-v3 \(release fix-v3-\S+\)$/);
    const revertedBy = await until("reverted_by", async () => (await client.get(id)).revertedBy || undefined);
    const revert = await client.waitTerminal(revertedBy);
    expect(revert.state, revert.message).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(revert.reverts).toBe(id);
    expect(revert.restores?.deploymentId).toBe(desired?.deploymentId);
    expect(revert.targets?.map((t) => t.agentId).sort()).toEqual(["a1", "a2"]);
    expect(revert.requestedByNote).toBe(`revert of ${id}, cancelled by anonymous (development mode) with revert: back to fix-v3 (release ${revert.restores?.release})`);
    // The agents run fix-v3 again (installed by the revert: named after it), and it is still the desired release.
    const { agents } = await client.agents({ app: "web", environment: "prod" });
    for (const a of agents) expect(a.currentReleases["web"], a.id).toBe(`fix-v3-${revertedBy.slice(-8)}`);
    expect((await client.release("web", "prod")).desired?.deploymentId).toBe(desired?.deploymentId);
    // Shown by get and watch; asked again, nothing more is recorded.
    const got = await cli(["get", id]);
    expect(got.stdout).toContain("cancel requested by anonymous (development mode), with kill_running (the applies in flight are killed) and with revert (to fix-v3-");
    expect(got.stdout).toContain(`reverted by ${revertedBy} (cancel --revert)`);
    const watched = await cli(["watch", id, "--after", "0"]);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/deployment\.cancel_requested .*error rate up; kill_running: the applies in flight are killed; revert: the changed targets go back to fix-v3/);
    expect(watched.stdout + watched.stderr).toContain(`revert: deployment ${revertedBy} brings 2 target(s) of ${id} back to fix-v3`);
    const again = await cli(["cancel", id, "--revert"]);
    expect(again.code, shown(again)).toBe(0);
    expect(again.stdout).toContain(`${id} was already CANCELLED: nothing to cancel; then the targets it changed go back to fix-v3`);
    const events: string[] = [];
    await client.watch(id, 0, (e) => events.push(e.type ?? "")).done;
    expect(events.filter((t) => t === "deployment.cancel_requested")).toHaveLength(1);
  });

  it("a cancel --revert of a deployment that installs the desired release itself is refused", async () => {
    // Its canary wave done, it waits for a promote: still running.
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "fix-v3", "--canary", "1", "--detach"]);
    expect(r.code, shown(r)).toBe(0);
    const id = deploymentIdOf(r);
    await until("awaiting promotion", async () => ((await client.get(id)).awaitingPromotion ? true : undefined));
    const c = await cli(["cancel", id, "--revert"]);
    expect(c.code, shown(c)).toBe(2);
    expect(c.stderr).toMatch(new RegExp(`deployment ${id} cannot be reverted: it installs the desired release of web in prod itself \\(fix-v3-\\S+\\); cancel it without revert`));
    expect((await client.get(id)).cancelRequested).toBe(false);
    expect((await cli(["cancel", id])).code).toBe(0);
    expect((await ended(id)).state).toBe("DEPLOYMENT_STATE_CANCELLED");
  });

  it("deployctl revert brings back what a deployment cancelled without --revert changed, once; what it cannot revert is refused, naming why", async () => {
    const desired = (await client.release("web", "prod")).desired;
    const id = await hanging("v6");
    const running = await cli(["revert", id]);
    expect(running.code, shown(running)).toBe(2);
    expect(running.stderr).toContain(`deployment ${id} cannot be reverted: it is still RUNNING; to stop it and roll back, cancel it with revert (deployctl cancel ${id} --revert)`);
    expect((await cli(["cancel", id, "--kill"])).code).toBe(0);
    expect((await ended(id)).revertedBy ?? "").toBe("");

    // Two operators at once: one revert (createRevert answers the one made
    // first, whoever made it), both told its id.
    const [r, twin] = await Promise.all([cli(["revert", id, "--note", "after the fact"]), cli(["revert", id, "--note", "after the fact", "--detach", "--json"])]);
    expect(r.code, shown(r)).toBe(0);
    expect(twin.code, shown(twin)).toBe(0);
    const revertId = (await client.get(id)).revertedBy ?? "";
    expect(revertId).not.toBe("");
    expect((JSON.parse(twin.stdout) as { deployment: { id: string } }).deployment.id).toBe(revertId);
    expect((await client.list({ app: "web", environment: "prod", pageSize: 100 })).deployments.filter((d) => d.reverts === id).map((d) => d.id)).toEqual([revertId]);
    expect(r.stdout).toContain(`deployment ${revertId}: revert of ${id}, 2 target(s) back to fix-v3 (release fix-v3-`);
    const revert = await client.get(revertId);
    expect(revert.state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(revert.reverts).toBe(id);
    expect(revert.restores?.deploymentId).toBe(desired?.deploymentId);
    expect(revert.requestedBy).toBe("anonymous (development mode)");
    expect(revert.requestedByNote).toBe(`revert of ${id}: after the fact: back to fix-v3 (release ${revert.restores?.release})`);
    expect((await cli(["get", id])).stdout).toContain(`reverted by ${revertId} (deployctl revert)`);
    // Asked again: the same revert, followed to its end.
    const again = await cli(["revert", id, "--detach", "--json"]);
    expect(again.code, shown(again)).toBe(0);
    expect((JSON.parse(again.stdout) as { deployment: { id: string } }).deployment.id).toBe(revertId);
    // Not revertible: a revert, a deployment that succeeded, one that later ones overtook.
    const ofRevert = await cli(["revert", revertId]);
    expect(ofRevert.code, shown(ofRevert)).toBe(2);
    expect(ofRevert.stderr).toContain(`deployment ${revertId} cannot be reverted: it is the revert of ${id} itself`);
    const ok = await cli(["revert", desired!.deploymentId!]);
    expect(ok.code, shown(ok)).toBe(2);
    expect(ok.stderr).toContain(`it SUCCEEDED, so it made a desired release; to go back from that, deployctl rollback web prod`);
    const stale = await cli(["revert", cancelledEarly]);
    expect(stale.code, shown(stale)).toBe(2);
    expect(stale.stderr).toContain(`deployment ${cancelledEarly} cannot be reverted: deployment ${desired?.deploymentId} (fix-v3-`);
    expect(stale.stderr).toContain("succeeded after it ended, and is the desired release");
    expect((await client.get(cancelledEarly)).revertedBy ?? "").toBe("");
  });
});

describe("cancel --kill without the coordinator's notice", () => {
  let stack: Stack | undefined;
  let work = "";
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("the agent's own look kills the apply: a coordinator that stopped before its notice, or one from before it", async () => {
    work = await mkdtemp(join(tmpdir(), "cancel-kill-look-"));
    const script = await hangingScript(work);
    stack = await Stack.start({ agents: [], coordinatorEnv: { DEPLOY_COORDINATOR_FAULT_NO_KILL_NOTICE: "1" }, agentEnv: { DEPLOY_AGENT_KILL_LOOK_MS: "300" } });
    await stack.startAgent("a1", { apps: { web: { deploy: script } } });
    const client = stack.client();
    const d = await client.create({ requestId: `look-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
    const pid = await applyingPid(work, "a1");
    await client.call("CancelDeployment", { deploymentId: d.id, reason: "no notice", killRunning: true });
    await expectKilled(client, d.id!, pid);
  });
});

describe("cancel --kill while the agent is cut off from NATS", () => {
  let stack: Stack | undefined;
  let proxy: LinkProxy | undefined;
  let work = "";
  afterAll(async () => {
    await stack?.stop();
    await proxy?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("the agent missed the notice: it looks when it reconnects, and kills the apply", async () => {
    work = await mkdtemp(join(tmpdir(), "cancel-kill-cut-"));
    const script = await hangingScript(work);
    // The agents' own look at 10 minutes: a kill within the test is the
    // reconnect's look. An agent live for 15 s without a heartbeat (the
    // default), so the 3 s cut does not time its target out.
    stack = await Stack.start({ agents: [], agentEnv: { DEPLOY_AGENT_KILL_LOOK_MS: "600000" }, coordinatorEnv: { DEPLOY_AGENT_LIVE_MS: "15000" } });
    const natsPort = Number(new URL(stack.nats.url).port);
    proxy = new LinkProxy(() => [natsPort]);
    await proxy.start();
    await stack.startAgent("a1", { apps: { web: { deploy: script } }, env: { NATS_URL: proxy.url } });
    const client = stack.client();
    const d = await client.create({ requestId: `cut-${Date.now()}`, app: "web", environment: "prod", changeset: { version: "v1" } });
    const pid = await applyingPid(work, "a1");
    // Cut off for 3 s: the notice the cancel sends meanwhile is lost.
    proxy.cut(3000);
    await client.call("CancelDeployment", { deploymentId: d.id, reason: "while cut off", killRunning: true });
    await expectKilled(client, d.id!, pid);
    const log = stack.agent("a1").logs();
    expect(log).toContain("the deployment was cancelled with kill_running: killing the apply");
  });
});

describe("kill notices, as an agent hears them", () => {
  it("a watch hears the notices naming its deployment, also one that came after its claim and before the watch, and no other; and is told of a reconnect", { timeout: 60_000 }, async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const pub = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const config = { id: "a7", environment: "prod", apps: {}, labels: {} } as unknown as AgentConfig;
    const reg = new Registration({ agents: { put: () => Promise.resolve(1) } } as never, config, 60_000, createLogger("test", "silent"), nc);
    const notice = async (id: string): Promise<void> => {
      pub.publish(HEARTBEAT_REQUEST_SUBJECT, killNotice(id));
      await pub.flush();
      await nc.flush();
      await new Promise((r) => setTimeout(r, 50));
    };
    try {
      await reg.start({});
      const claimAt = performance.now();
      await notice("d-1");
      const looks = { d1: [] as string[], d1Later: [] as string[], d2: [] as string[] };
      // Claimed before the notice, watching after it: looks at once.
      const w1 = reg.onKillNotice("d-1", claimAt, (why) => looks.d1.push(why));
      // Claimed after it: that notice was not for this apply.
      const w2 = reg.onKillNotice("d-1", performance.now(), (why) => looks.d1Later.push(why));
      const w3 = reg.onKillNotice("d-2", claimAt, (why) => looks.d2.push(why));
      await new Promise((r) => setTimeout(r, 50));
      expect(looks).toEqual({ d1: ["notice"], d1Later: [], d2: [] });
      await notice("d-1");
      expect(looks).toEqual({ d1: ["notice", "notice"], d1Later: ["notice"], d2: [] });
      await notice("d-3");
      await notice("d-2");
      expect(looks).toEqual({ d1: ["notice", "notice"], d1Later: ["notice"], d2: ["notice"] });
      // A watch removed hears nothing more.
      w1();
      await notice("d-1");
      expect(looks).toEqual({ d1: ["notice", "notice"], d1Later: ["notice", "notice"], d2: ["notice"] });
      // A reconnect tells every watch (a notice may have been sent while
      // cut off), as a reconnect: the apply then makes one look, not three.
      const claimBefore = performance.now();
      await server.restart();
      await until("watches told of the reconnect", () => Promise.resolve(looks.d2.length === 2 ? true : undefined));
      expect(looks).toEqual({ d1: ["notice", "notice"], d1Later: ["notice", "notice", "reconnect"], d2: ["notice", "reconnect"] });
      // A watch made after the reconnect, for an apply claimed before it: told at once.
      const late: string[] = [];
      const w4 = reg.onKillNotice("d-4", claimBefore, (why) => late.push(why));
      await new Promise((r) => setTimeout(r, 50));
      expect(late).toEqual(["reconnect"]);
      w2();
      w3();
      w4();
    } finally {
      reg.stop();
      await pub.close();
      await nc.close();
      await server.stop();
    }
  });
});

describe("an apply's kill watch after a reconnect", () => {
  /** watchForKill with a registration that hands its look out, and a direct get that fails `failures` times, then answers `killed` or not. */
  function watched(failures: number, killed: boolean) {
    let tell: ((why: KillLookReason) => void) | undefined;
    const gets: number[] = [];
    const t0 = performance.now();
    const deps = {
      config: { killLookMs: 0 },
      registration: {
        onKillNotice: (_id: string, _since: number, look: (why: KillLookReason) => void) => {
          tell = look;
          return () => undefined;
        },
      },
      ctx: {
        jsm: {
          direct: {
            getMessage: () => {
              gets.push(Math.round(performance.now() - t0));
              if (gets.length <= failures) return Promise.reject(new Error("JetStream not ready"));
              return Promise.resolve({ header: { get: (k: string) => (k === HDR_KILL_REQUESTED && killed ? "true" : undefined) }, data: new Uint8Array() });
            },
          },
        },
      },
    } as unknown as HandlerDeps;
    const watch = watchForKill(deps, "d-1", 0, createLogger("test", "silent"));
    return { watch, gets, tell: (why: KillLookReason) => tell!(why) };
  }

  it("looks once when the look reads, and again while it cannot read, until one does", { timeout: 30_000 }, async () => {
    const ok = watched(0, false);
    ok.tell("reconnect");
    const failing = watched(2, true);
    failing.tell("reconnect");
    await until("the failing look read, and killed", () => Promise.resolve(failing.watch.signal.aborted || undefined), 10_000, 50);
    // Two failed reads, then one after 1 s and 2 s more.
    expect(failing.gets).toHaveLength(3);
    expect(failing.gets[1]! - failing.gets[0]!).toBeGreaterThanOrEqual(990);
    expect(failing.gets[2]! - failing.gets[1]!).toBeGreaterThanOrEqual(1990);
    expect(ok.gets).toHaveLength(1);
    expect(ok.watch.signal.aborted).toBe(false);
    // A notice still makes its three looks while none sees the kill.
    ok.tell("notice");
    await until("the notice's three looks", () => Promise.resolve(ok.gets.length >= 4 || undefined), 10_000, 50);
    await new Promise((r) => setTimeout(r, 200));
    expect(ok.gets).toHaveLength(4);
    ok.watch.stop();
    failing.watch.stop();
  });
});
