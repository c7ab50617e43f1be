import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyBundle, recoverInstall, type ApplyBundleOptions } from "../services/agent/src/bundle/applyBundle.js";
import { listReleases, readCurrent, cleanPartial, switchCurrent, readInstallInProgress, writeInstallInProgress, type InstallInProgress } from "../services/agent/src/bundle/releases.js";
import { HELD_OPEN_NOTICE } from "../services/agent/src/runner.js";
import { HOOK_NAMES, type HookName } from "../services/shared/src/bundle/manifest.js";
import { script, writeBundle, type BundleEntry } from "./helpers/bundles.js";

const APP = "shop";
let tmp: string;
let root: string;
let log: string;
let pidFile: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "bundle-apply-"));
  root = path.join(tmp, "root");
  log = path.join(tmp, "hooks.log");
  pidFile = path.join(tmp, "grandchild.pid");
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

interface BundleSpec {
  version: string;
  fail?: HookName;
  hang?: HookName;
  /** Hook that prints this many lines. */
  noisy?: { hook: HookName; lines: number };
  keep?: number;
  extra?: BundleEntry[];
  /** More deploy.yaml lines (shared_dirs, shared_files). */
  manifest?: string;
}

/** A bundle whose every hook appends "<hook>:<version>" to $HOOK_LOG; `fail` exits 3, `hang` leaves a sleeping grandchild. */
function bundleEntries(s: BundleSpec): BundleEntry[] {
  const hooks = HOOK_NAMES.map((h) => `  ${h}: { run: hooks/${h}.sh${h === s.hang ? ", timeout: 1s" : ""} }`).join("\n");
  const entries: BundleEntry[] = [
    { name: "deploy.yaml", content: `version: 1\nhooks:\n${hooks}\nkeep_releases: ${s.keep ?? 5}\n${s.manifest ?? ""}` },
    { name: "VERSION", content: s.version },
  ];
  for (const h of HOOK_NAMES) {
    let body = `echo "${h}:${s.version}" >> "$HOOK_LOG"`;
    if (h === s.fail) body += `\necho "${h} is broken"\nexit 3`;
    if (h === s.hang) body += `\nsleep 1000 &\necho $! > "$PIDFILE"\nwait`;
    if (h === s.noisy?.hook) body += `\nfor i in $(seq 1 ${s.noisy.lines}); do echo "line $i"; done`;
    entries.push({ name: `hooks/${h}.sh`, content: script(body), mode: 0o755 });
  }
  return [...entries, ...(s.extra ?? [])];
}

async function deploy(s: BundleSpec, overrides: Partial<ApplyBundleOptions> = {}) {
  const file = await writeBundle(tmp, bundleEntries(s));
  const { size } = await fs.stat(file);
  const lines: string[] = [];
  const phases: string[] = [];
  const result = await applyBundle({
    artifactFile: file,
    artifactSize: size,
    root,
    app: APP,
    releaseName: `${s.version}-dep`,
    deploymentId: `d-${s.version}`,
    env: { HOOK_LOG: log, PIDFILE: pidFile, DEPLOY_VERSION: s.version },
    maxExpansionRatio: 100,
    deadlineMs: Date.now() + 60_000,
    maxLines: 1000,
    maxLineLength: 200,
    onLines: (l) => lines.push(...l),
    onPhase: (p) => phases.push(p),
    ...overrides,
  });
  return { result, lines, phases };
}

async function hookLog(): Promise<string[]> {
  const text = await fs.readFile(log, "utf8").catch(() => "");
  await fs.rm(log, { force: true });
  return text.split("\n").filter(Boolean);
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return !/^\d+ \(.*\) Z/s.test(stat);
}

/** A kill (a cancel with kill_running) aborted once a `hang` hook is up (its grandchild wrote PIDFILE); await `killer` after the apply. */
async function killOnceHung(): Promise<{ kill: AbortController; killer: Promise<void> }> {
  await fs.rm(pidFile, { force: true });
  const kill = new AbortController();
  const killer = (async () => {
    while (!(await fs.readFile(pidFile, "utf8").catch(() => ""))) await new Promise((r) => setTimeout(r, 10));
    kill.abort("killed: the deployment was cancelled with kill_running by alice");
  })();
  return { kill, killer };
}

const current = () => readCurrent(root, APP);
const ALL = ["before_install", "after_install", "start", "validate"];

describe("applyBundle", () => {
  it("installs a first release and runs its hooks in order with the release env", async () => {
    const { result, phases } = await deploy({ version: "v1", extra: [] });
    expect(result).toEqual({ outcome: "SUCCEEDED", message: "release v1-dep is current", rolledBack: false, exitCode: 0, linesCut: 0 });
    expect(await current()).toBe("v1-dep");
    expect(await fs.readFile(path.join(root, APP, "current", "VERSION"), "utf8")).toBe("v1");
    expect(await fs.readlink(path.join(root, APP, "current"))).toBe("releases/v1-dep");
    expect(await hookLog()).toEqual(ALL.map((h) => `${h}:v1`));
    expect(phases).toEqual(["prepare", "unpack", "hook:before_install", "hook:after_install", "switch", "hook:start", "hook:validate", "prune"]);
  });

  it("installs a release whose start hook leaves the app running in the background, at the hook's exit, and leaves the app alone", async () => {
    // `server &` without redirecting its output: the classic start hook.
    const file = await writeBundle(tmp, [
      { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: start.sh, timeout: 5m }\n" },
      { name: "start.sh", content: script('sleep 300 &\necho $! > "$PIDFILE"\necho "server started"'), mode: 0o755 },
    ]);
    const lines: string[] = [];
    const { size } = await fs.stat(file);
    const r = await applyBundle({
      artifactFile: file, artifactSize: size, root, app: APP, releaseName: "v1-dep", deploymentId: "d-v1", env: { PIDFILE: pidFile }, maxExpansionRatio: 100,
      deadlineMs: Date.now() + 600_000, maxLines: 100, maxLineLength: 500, onLines: (l) => lines.push(...l),
    });
    const server = Number(await fs.readFile(pidFile, "utf8"));
    try {
      expect(r).toMatchObject({ outcome: "SUCCEEDED", message: "release v1-dep is current; left running by its start hook: a process that holds the hook's output, no longer captured" });
      expect(lines).toEqual(["[start] server started", `[start] ${HELD_OPEN_NOTICE}`]);
      expect(await isAlive(server)).toBe(true);
    } finally {
      process.kill(server, "SIGKILL");
    }
  });

  it("passes DEPLOY_RELEASE_DIR and DEPLOY_PREVIOUS_RELEASE_DIR and runs in the release dir", async () => {
    await deploy({ version: "v1" });
    const file = await writeBundle(tmp, [
      { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh }\n" },
      { name: "s.sh", content: script('echo "rel=$DEPLOY_RELEASE_DIR prev=$DEPLOY_PREVIOUS_RELEASE_DIR cwd=$PWD"'), mode: 0o755 },
    ]);
    const lines: string[] = [];
    const { size } = await fs.stat(file);
    const r = await applyBundle({
      artifactFile: file, artifactSize: size, root, app: APP, releaseName: "v2-dep", deploymentId: "d-v2", env: { HOOK_LOG: log }, maxExpansionRatio: 100,
      deadlineMs: Date.now() + 60_000, maxLines: 100, maxLineLength: 500, onLines: (l) => lines.push(...l),
    });
    expect(r.outcome).toBe("SUCCEEDED");
    const rel = path.join(root, APP, "releases");
    expect(lines).toEqual([`[start] rel=${rel}/v2-dep prev=${rel}/v1-dep cwd=${rel}/v2-dep`]);
  });

  describe.each(["fail", "hang"] as const)("a hook that %ss", (mode) => {
    const expectKilled = async (): Promise<void> => {
      if (mode !== "hang") return;
      const pid = Number(await fs.readFile(pidFile, "utf8"));
      await expect.poll(() => isAlive(pid), { timeout: 5000 }).toBe(false);
    };
    const reason = mode === "fail" ? /failed: exit code 3 \(last output: .* is broken\)/ : /failed: killed after timeout of 1000 ms/;

    it.each(["before_install", "after_install"] as const)("in %s leaves current on the old release", async (hook) => {
      await deploy({ version: "v1" });
      await hookLog();
      const { result } = await deploy({ version: "v2", [mode]: hook });
      expect(result.outcome).toBe("FAILED");
      expect(result.rolledBack).toBe(false);
      expect(result.exitCode).toBe(mode === "fail" ? 3 : null);
      expect(result.message).toMatch(new RegExp(`^${hook} hook failed`));
      expect(result.message).toMatch(reason);
      expect(await current()).toBe("v1-dep");
      const ran = hook === "before_install" ? ["before_install:v2"] : ["before_install:v2", "after_install:v2"];
      expect(await hookLog()).toEqual(ran);
      await expectKilled();
    });

    it("in the old release's stop leaves current on the old release", async () => {
      await deploy({ version: "v1", [mode]: "stop" });
      await hookLog();
      const { result } = await deploy({ version: "v2" });
      expect(result).toMatchObject({ outcome: "FAILED", rolledBack: false });
      expect(result.message).toMatch(/^stop hook of release v1-dep failed/);
      expect(result.message).toMatch(reason);
      expect(await current()).toBe("v1-dep");
      expect(await hookLog()).toEqual(["before_install:v2", "after_install:v2", "stop:v1"]);
      await expectKilled();
    });

    it.each(["start", "validate"] as const)("in %s rolls back to the previous release and starts it", async (hook) => {
      await deploy({ version: "v1" });
      await hookLog();
      const { result, phases } = await deploy({ version: "v2", [mode]: hook });
      expect(result).toMatchObject({ outcome: "FAILED", rolledBack: true, exitCode: mode === "fail" ? 3 : null });
      expect(result.message).toMatch(new RegExp(`^${hook} hook failed`));
      expect(result.message).toMatch(reason);
      expect(result.message).toMatch(/; rolled back to v1-dep$/);
      expect(await current()).toBe("v1-dep");
      const upTo = ["start", "validate"].slice(0, hook === "start" ? 1 : 2).map((h) => `${h}:v2`);
      expect(await hookLog()).toEqual(["before_install:v2", "after_install:v2", "stop:v1", ...upTo, "start:v1"]);
      expect(phases.slice(-2)).toEqual(["rollback", "hook:rollback:start"]);
      await expectKilled();
    });
  });

  it("a first release failing validate removes current and does not claim a rollback", async () => {
    const { result } = await deploy({ version: "v1", fail: "validate" });
    expect(result).toMatchObject({ outcome: "FAILED", rolledBack: false, exitCode: 3 });
    expect(result.message).toMatch(/^validate hook failed: exit code 3.*; no previous release to roll back to, current removed$/);
    expect(await current()).toBeUndefined();
    await expect(fs.lstat(path.join(root, APP, "current"))).rejects.toThrow(/ENOENT/);
  });

  it("after a first release failed, installs the next and later rolls back to it", async () => {
    expect((await deploy({ version: "v1", fail: "start" })).result.rolledBack).toBe(false); // current removed
    await deploy({ version: "v2" });
    expect(await current()).toBe("v2-dep");
    // v3 fails validate; rolling back to v2 runs v2's start, which works.
    const { result } = await deploy({ version: "v3", fail: "validate" });
    expect(result.message).toMatch(/rolled back to v2-dep$/);
  });

  it("keeps keep_releases releases, never current or previous", async () => {
    for (const v of ["v1", "v2", "v3"]) expect((await deploy({ version: v, keep: 2 })).result.outcome).toBe("SUCCEEDED");
    expect(await listReleases(root, APP)).toEqual(["v2-dep", "v3-dep"]);
    expect(await current()).toBe("v3-dep");
    // A failed v4 stays for inspection; the next success prunes by install order, protecting v5 (current) and v3 (previous).
    await deploy({ version: "v4", fail: "before_install", keep: 2 });
    expect((await deploy({ version: "v5", keep: 2 })).result.outcome).toBe("SUCCEEDED");
    expect(await listReleases(root, APP)).toEqual(["v3-dep", "v4-dep", "v5-dep"]);
  });

  it("caps huge hook output with a budget shared by all hooks", async () => {
    const { result, lines } = await deploy({ version: "v1", noisy: { hook: "start", lines: 50_000 } }, { maxLines: 100 });
    expect(result.outcome).toBe("SUCCEEDED");
    expect(lines).toHaveLength(100);
    expect(lines[0]).toBe("[start] line 1");
    expect(result.linesCut).toBe(50_000 - 100);
  });

  it("refuses a hostile bundle before any hook runs and leaves nothing under the release root", async () => {
    await deploy({ version: "v1" });
    await hookLog();
    for (const bad of [
      { name: "../x", content: "x" },
      { name: "/etc/x", content: "x" },
      { name: "link", type: "symlink", target: "../../etc" },
      { name: "abs", type: "symlink", target: "/etc" },
      { name: "hard", type: "link", target: "VERSION" },
      { name: "null", type: "character-device" },
      { name: "fifo", type: "fifo" },
    ] as BundleEntry[]) {
      const { result } = await deploy({ version: "v2", extra: [bad] });
      expect(result.outcome).toBe("FAILED");
      expect(result.message).toMatch(/^bundle refused: bundle: /);
      expect(await hookLog()).toEqual([]);
      expect(await current()).toBe("v1-dep");
      expect(await fs.readdir(path.join(root, APP, "releases"))).toEqual(["v1-dep"]);
    }
  });

  it("refuses an expansion bomb and a bad manifest", async () => {
    const { result } = await deploy({ version: "v1", extra: [{ name: "zeros", type: "zeros", size: 50 * 1024 * 1024 }] }, { maxExpansionRatio: 10 });
    expect(result.message).toMatch(/^bundle refused: bundle: expands to more than 10 times/);
    const file = await writeBundle(tmp, [{ name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh, timeout: 5 }\n" }, { name: "s.sh", content: script("true"), mode: 0o755 }]);
    const { size } = await fs.stat(file);
    const r = await applyBundle({
      artifactFile: file, artifactSize: size, root, app: APP, releaseName: "v2-dep", deploymentId: "d-v2", env: {}, maxExpansionRatio: 100,
      deadlineMs: Date.now() + 60_000, maxLines: 100, maxLineLength: 500, onLines: () => undefined,
    });
    expect(r.message).toMatch(/^bundle refused: hooks.start.timeout: /);
    expect(await fs.readdir(path.join(root, APP, "releases"))).toEqual([]);
    expect(await current()).toBeUndefined();
  });

  it("ignore_stop_failures: a release in place whose stop hook fails no longer blocks every deploy after it", async () => {
    expect((await deploy({ version: "v1", fail: "stop" })).result.outcome).toBe("SUCCEEDED");
    const blocked = await deploy({ version: "v2" });
    expect(blocked.result.message).toMatch(/^stop hook of release v1-dep failed: exit code 3/);
    expect(await current()).toBe("v1-dep");
    await hookLog();
    const { result, lines } = await deploy({ version: "v3" }, { ignoreStopFailures: true, releaseName: "v3-dep" });
    expect(result.outcome, result.message).toBe("SUCCEEDED");
    expect(result.message).toMatch(/^release v3-dep is current; the stop hook of release v1-dep failed: exit code 3 .*, ignored \(ignore_stop_failures\)$/);
    expect(lines).toContain("[stop] failed, ignored (ignore_stop_failures): exit code 3");
    expect(await current()).toBe("v3-dep");
    expect(await hookLog()).toEqual(["before_install:v3", "after_install:v3", "stop:v1", "start:v3", "validate:v3"]);
  });

  it("a kill of the apply (a cancel with kill_running) stops the new release's hook and goes back to the previous release, whose start hook runs", async () => {
    expect((await deploy({ version: "v1" })).result.outcome).toBe("SUCCEEDED");
    await hookLog();
    // Killed while validate runs (its grandchild is up), well before its 1 s timeout.
    const { kill, killer } = await killOnceHung();
    const { result, phases } = await deploy({ version: "v2", hang: "validate" }, { signal: kill.signal, rollbackSignal: new AbortController().signal });
    await killer;
    expect(result.outcome).toBe("FAILED");
    expect(result.message).toBe("validate hook failed: killed: the deployment was cancelled with kill_running by alice; rolled back to v1-dep");
    expect(result.rolledBack).toBe(true);
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["before_install:v2", "after_install:v2", "stop:v1", "start:v2", "validate:v2", "start:v1"]);
    expect(phases.slice(-2)).toEqual(["rollback", "hook:rollback:start"]);
    expect(await isAlive(Number(await fs.readFile(pidFile, "utf8")))).toBe(false);
  });

  it("a kill while the release in place runs its stop hook starts that release again", async () => {
    expect((await deploy({ version: "v1", hang: "stop" })).result.outcome).toBe("SUCCEEDED");
    await hookLog();
    const { kill, killer } = await killOnceHung();
    const { result } = await deploy({ version: "v2" }, { signal: kill.signal, rollbackSignal: new AbortController().signal });
    await killer;
    expect(result.outcome).toBe("FAILED");
    expect(result.message).toBe("stop hook of release v1-dep failed: killed: the deployment was cancelled with kill_running by alice; release v1-dep started again");
    expect(result.rolledBack).toBe(false);
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["before_install:v2", "after_install:v2", "stop:v1", "start:v1"]);
    expect(await readInstallInProgress(root, APP)).toBeUndefined();
  });

  it("records the install in progress from the stop of the release in place to its end; a way back cut short leaves it, going back", async () => {
    expect((await deploy({ version: "v1" })).result.outcome).toBe("SUCCEEDED");
    expect(await readInstallInProgress(root, APP)).toBeUndefined();
    await hookLog();
    // The way back's own signal already aborted: the agent's shutdown past the way back's 10 s.
    const gone = new AbortController();
    gone.abort("interrupted by shutdown");
    const { result } = await deploy({ version: "v2", fail: "validate" }, { rollbackSignal: gone.signal });
    expect(result.message).toMatch(/^validate hook failed: exit code 3.*; rolled back to v1-dep, but its start hook failed: interrupted by shutdown$/);
    const left = await readInstallInProgress(root, APP);
    expect(left).toMatchObject({ deploymentId: "d-v2", release: "v2-dep", previous: "v1-dep", stage: "going-back", env: { DEPLOY_VERSION: "v2" } });
    expect(left?.reason).toMatch(/^validate hook failed: exit code 3/);
    // The restart finishes the way back, and its result still says what failed.
    await hookLog();
    const note = await recoverInstall({ root, app: APP, record: left!, env: { HOOK_LOG: log }, maxLines: 100, maxLineLength: 200, onLines: () => undefined });
    expect(note).toBe(`it had failed (${left?.reason}) and was going back: release v1-dep started again and ran its start hook`);
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["start:v1"]);
    expect(await readInstallInProgress(root, APP)).toBeUndefined();
  });

  it("recoverInstall: at the agent's restart an install killed in the middle goes back to the previous release and runs its start hook", async () => {
    expect((await deploy({ version: "v1" })).result.outcome).toBe("SUCCEEDED");
    expect((await deploy({ version: "v2" })).result.outcome).toBe("SUCCEEDED");
    await hookLog();
    const record: InstallInProgress = { schema: "deploy.install-in-progress.v1", deploymentId: "d-v2", release: "v2-dep", previous: "v1-dep", env: { DEPLOY_VERSION: "v2" }, stage: "installing" };
    const recover = () => recoverInstall({ root, app: APP, record, env: { HOOK_LOG: log }, maxLines: 100, maxLineLength: 200, onLines: () => undefined });
    // Killed after the switch (v2's validate): current goes back.
    await writeInstallInProgress(root, APP, record);
    expect(await recover()).toBe("rolled back to v1-dep and ran its start hook");
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["start:v1"]);
    expect(await readInstallInProgress(root, APP)).toBeUndefined();
    // Killed before the switch (v1's stop hook had run): v1 is started again.
    await writeInstallInProgress(root, APP, record);
    expect(await recover()).toBe("release v1-dep started again and ran its start hook");
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["start:v1"]);
    // A first install killed after its switch: nothing to go back to, current removed.
    await switchCurrent(root, APP, "v2-dep");
    expect(await recoverInstall({ root, app: APP, record: { ...record, previous: null }, env: {}, maxLines: 100, maxLineLength: 200, onLines: () => undefined })).toBe(
      "there was no previous release: current (v2-dep) removed",
    );
    expect(await current()).toBeUndefined();
    expect(await hookLog()).toEqual([]);
  });

  it("a new release that uses up the apply's time still goes back to the previous release, whose start hook runs past the deadline", async () => {
    expect((await deploy({ version: "v1" })).result.outcome).toBe("SUCCEEDED");
    await hookLog();
    // validate hangs (its own timeout 1 s); the apply's deadline comes first.
    const { result } = await deploy({ version: "v2", hang: "validate" }, { deadlineMs: Date.now() + 600 });
    expect(result.outcome).toBe("FAILED");
    expect(result.rolledBack).toBe(true);
    expect(result.message).toMatch(/^validate hook failed: killed after timeout of \d+ ms.*; rolled back to v1-dep$/);
    expect(await current()).toBe("v1-dep");
    expect(await hookLog()).toEqual(["before_install:v2", "after_install:v2", "stop:v1", "start:v2", "validate:v2", "start:v1"]);
  });

  describe("shared paths (shared_dirs, shared_files)", () => {
    const SHARED = "shared_dirs: [storage, var/log]\nshared_files: [config/.env]\n";
    const sharedOf = (p: string): string => path.join(root, APP, "shared", p);
    const inCurrent = (p: string): string => path.join(root, APP, "current", p);

    it("the first release seeds them from the bundle; later releases link to them and never overwrite them", async () => {
      // Each version ships its own seed, .env and (not shared) app.yaml.
      const release = (version: string, env: string): ReturnType<typeof deploy> =>
        deploy({
          version,
          manifest: SHARED,
          extra: [
            { name: "storage/seed.txt", content: `from ${version}` },
            { name: "config/.env", content: env },
            { name: "config/app.yaml", content: `name: shop ${version}\n` },
          ],
        });
      const v1 = await release("v1", "A=1\n");
      expect(v1.result.outcome, v1.result.message).toBe("SUCCEEDED");
      expect(v1.phases).toContain("shared");
      expect(await fs.readFile(sharedOf("storage/seed.txt"), "utf8")).toBe("from v1");
      expect(await fs.readFile(sharedOf("config/.env"), "utf8")).toBe("A=1\n");
      expect((await fs.stat(sharedOf("var/log"))).isDirectory()).toBe(true); // not in the bundle: made empty
      for (const p of ["storage", "var/log", "config/.env"]) expect(await fs.readlink(path.join(root, APP, "releases", "v1-dep", p))).toBe(sharedOf(p));
      // The app writes its data through the links.
      await fs.writeFile(inCurrent("storage/upload.bin"), "user data");
      await fs.writeFile(inCurrent("config/.env"), "A=edited on the VM\n");

      const v2 = await release("v2", "A=2\n");
      expect(v2.result.outcome, v2.result.message).toBe("SUCCEEDED");
      expect(await fs.readFile(inCurrent("storage/upload.bin"), "utf8")).toBe("user data");
      expect(await fs.readFile(inCurrent("storage/seed.txt"), "utf8")).toBe("from v1");
      expect(await fs.readFile(inCurrent("config/.env"), "utf8")).toBe("A=edited on the VM\n");
      // What is not shared comes from the release.
      expect(await fs.readFile(inCurrent("config/app.yaml"), "utf8")).toBe("name: shop v2\n");
    });

    it("hooks get DEPLOY_SHARED_DIR, and see the links from before_install on", async () => {
      const file = await writeBundle(tmp, [
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  before_install: { run: b.sh }\nshared_dirs: [data]\n" },
        { name: "b.sh", content: script('echo "shared=$DEPLOY_SHARED_DIR data=$(readlink data)"'), mode: 0o755 },
      ]);
      const lines: string[] = [];
      const { size } = await fs.stat(file);
      const r = await applyBundle({
        artifactFile: file, artifactSize: size, root, app: APP, releaseName: "v1-dep", deploymentId: "d-v1", env: {}, maxExpansionRatio: 100,
        deadlineMs: Date.now() + 60_000, maxLines: 100, maxLineLength: 500, onLines: (l) => lines.push(...l),
      });
      expect(r.outcome, r.message).toBe("SUCCEEDED");
      expect(lines).toEqual([`[before_install] shared=${path.join(root, APP, "shared")} data=${sharedOf("data")}`]);
    });

    it("a bundle with a file where a directory is shared is refused before any hook, current untouched", async () => {
      await deploy({ version: "v1" });
      await hookLog();
      const { result } = await deploy({ version: "v2", manifest: "shared_dirs: [storage]\n", extra: [{ name: "storage", content: "a file" }] });
      expect(result).toMatchObject({ outcome: "FAILED", message: 'bundle refused: shared_dirs: "storage" is not a directory in the bundle' });
      expect(await hookLog()).toEqual([]);
      expect(await current()).toBe("v1-dep");
    });

    it("deploy.yaml refuses shared paths that overlap, hold a hook's script, or climb out", async () => {
      const bad = async (manifest: string): Promise<string> => (await deploy({ version: `v-${Math.random().toString(36).slice(2, 8)}`, manifest })).result.message;
      expect(await bad("shared_dirs: [var, var/log]\n")).toMatch(/shared_dirs\[1\]: "var\/log" and shared_dirs\[0\] "var" are inside one another/);
      expect(await bad("shared_dirs: [hooks]\n")).toMatch(/shared_dirs\[0\]: "hooks" holds the script of hooks\.\w+/);
      expect(await bad("shared_files: [../etc/passwd]\n")).toMatch(/shared_files\[0\]: "..\/etc\/passwd" must not contain ".."/);
      expect(await bad("shared_files: [deploy.yaml]\n")).toMatch(/deploy\.yaml cannot be shared/);
    });
  });

  it("never overwrites an existing release", async () => {
    await deploy({ version: "v1" });
    await hookLog();
    const { result } = await deploy({ version: "v1" });
    expect(result).toMatchObject({ outcome: "FAILED", message: "release v1-dep already exists; a release is never overwritten" });
    expect(await hookLog()).toEqual([]);
  });

  it("cleans what a crash mid-unpack or mid-switch left behind", async () => {
    await deploy({ version: "v1" });
    const app = path.join(root, APP);
    await fs.mkdir(path.join(app, "releases", "v2-dep.partial-abc123", "deep"), { recursive: true });
    await fs.symlink("releases/v1-dep", path.join(app, "current.tmp-deadbeef"));
    await cleanPartial(root, APP);
    expect((await fs.readdir(app)).sort()).toEqual([".installed", "current", "releases", "shared"]);
    expect(await fs.readdir(path.join(app, "releases"))).toEqual(["v1-dep"]);
    await switchCurrent(root, APP, "v1-dep");
    expect(await current()).toBe("v1-dep");
  });
});
