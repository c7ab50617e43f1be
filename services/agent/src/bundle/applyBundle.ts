// Installs one changeset bundle as a new release, CodeDeploy/Capistrano style:
//
//   unpack → shared links → before_install → after_install   (new release; `current` untouched)
//   stop                                      (the OLD release's hook, from its own deploy.yaml)
//   switch `current`                          (atomic: new symlink renamed over the old)
//   start → validate                          (new release; a failure rolls back)
//   prune                                     (keep_releases, never current or previous)
//
// A failing bundle never throws: every outcome is returned, because the
// caller has to journal and report it. Only programming errors throw.
import fs from "node:fs/promises";
import path from "node:path";
import { errorMessage, ValidationError } from "../../../shared/src/errors.js";
import { MANIFEST_FILE, parseManifest, type HookName, type Manifest } from "../../../shared/src/bundle/manifest.js";
import { runExecutable, type RunResult } from "../runner.js";
import type { RunAs } from "../runAs.js";
import { unpackBundle } from "./unpack.js";
import { linkShared, sharedDir } from "./shared.js";
import {
  appDir,
  checkReleaseName,
  chownTree,
  cleanPartial,
  installRelease,
  partialDir,
  pruneReleases,
  readCurrent,
  releaseDir,
  removeCurrent,
  removeInstallInProgress,
  switchCurrent,
  writeInstallInProgress,
  type InstallInProgress,
} from "./releases.js";

export interface ApplyBundleOptions {
  /** A verified local .tar.gz. */
  artifactFile: string;
  artifactSize: number;
  root: string;
  app: string;
  /** `${version}-${short deployment id}`, chosen by the caller; never reused. */
  releaseName: string;
  /** The deployment installing it: named in the record of the install in progress (recoverInstall). */
  deploymentId: string;
  /** DEPLOY_* vars from the caller; DEPLOY_RELEASE_DIR and DEPLOY_PREVIOUS_RELEASE_DIR are added here. */
  env: Record<string, string>;
  maxExpansionRatio: number;
  /** Cap on the bytes of the bundle's files, checked while unpacking (agent config maxUnpackedBytes); default 2 GiB. */
  maxUnpackedBytes?: number;
  /** Cap on the bundle's entries: files, directories, links (agent config maxFiles); default 100,000. */
  maxFiles?: number;
  /** Absolute Date.now()-based deadline of the whole apply: a hook's timeout is min(its own, time left). */
  deadlineMs: number;
  /** Output budget shared by all hooks of this apply. */
  maxLines: number;
  maxLineLength: number;
  /** Hook output, each line prefixed with "[<hook>] ". */
  onLines: (lines: string[]) => void;
  /** "prepare", "unpack", "hook:before_install", "hook:stop", "switch", "rollback", "prune", … for logs. */
  onPhase?: (phase: string) => void;
  /** Shutdown: kills the running hook; later hooks are not started. */
  signal?: AbortSignal;
  /** For the previous release's start hook when going back to it (default: signal): a kill of the apply stops the new release's hooks, not the way back. */
  rollbackSignal?: AbortSignal;
  /**
   * Asked once, after the unpack and before the first hook or the switch: a
   * reason fails the apply with nothing run and `current` untouched (the
   * agent's start lease).
   */
  mayStart?: () => string | undefined;
  /**
   * The release being replaced failing its stop hook does not fail the
   * install (strategy.ignore_stop_failures): a broken stop hook in the
   * release in place would otherwise fail every deploy after it.
   */
  ignoreStopFailures?: boolean;
  /**
   * The app's account (agent config apps.<app>.user): every hook runs as
   * it, and it owns the new release's files and the shared paths seeded
   * for it. The app's directory, `releases/`, `shared/` and `current` stay
   * the agent's: the app cannot switch its own release.
   */
  runAs?: RunAs;
  /**
   * A successful install leaves its record of the install in progress in
   * place, for the caller to remove (removeInstallInProgress) once the
   * result is durable: a crash between the end of the install and the
   * result's record then goes back to the previous release at the restart
   * (recoverInstall), as the interrupted apply's result says, instead of
   * leaving the new release current under a result that says the apply was
   * interrupted. A failed install removes it itself: `current` is already
   * back on the previous release.
   */
  keepRecordOnSuccess?: boolean;
}

/** How a refusal names the agent's caps (config.ts). */
const AGENT_LIMIT_NAMES = { entries: "the agent's maxFiles (DEPLOY_AGENT_MAX_FILES)", bytes: "the agent's maxUnpackedBytes (DEPLOY_AGENT_MAX_UNPACKED_BYTES)" };

export interface ApplyBundleResult {
  outcome: "SUCCEEDED" | "FAILED";
  message: string;
  rolledBack: boolean;
  /** Exit code of the hook that failed (null when killed, or when no hook was involved); 0 on success. */
  exitCode: number | null;
  /** Output lines of all hooks not passed to onLines. */
  linesCut: number;
}

export async function applyBundle(o: ApplyBundleOptions): Promise<ApplyBundleResult> {
  validateOptions(o);
  const phase = (p: string): void => {
    try {
      o.onPhase?.(p);
    } catch {
      // a logging callback must not change the outcome
    }
  };
  let linesDelivered = 0;
  let linesCut = 0;
  const failed = (message: string, extra: Partial<ApplyBundleResult> = {}): ApplyBundleResult => ({
    outcome: "FAILED",
    message,
    rolledBack: false,
    exitCode: null,
    linesCut,
    ...extra,
  });

  // ---- prepare, unpack: nothing has run yet; refusals end here ----
  phase("prepare");
  let previous: string | undefined;
  try {
    // Never group- or world-writable, whatever the umask: hooks run from here as the agent's user.
    await fs.mkdir(path.join(appDir(o.root, o.app), "releases"), { recursive: true, mode: 0o755 });
    // DEPLOY_SHARED_DIR exists for every hook, shared paths declared or not.
    await fs.mkdir(sharedDir(o.root, o.app), { mode: 0o755 }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    });
    await cleanPartial(o.root, o.app);
    previous = await readCurrent(o.root, o.app);
    const st = await fs.stat(o.artifactFile);
    if (st.size !== o.artifactSize) return failed(`artifact file is ${st.size} bytes, expected ${o.artifactSize}`);
  } catch (err) {
    return failed(`could not prepare the release directory: ${errorMessage(err)}`);
  }
  const newDir = releaseDir(o.root, o.app, o.releaseName);
  const prevDir = previous === undefined ? undefined : releaseDir(o.root, o.app, previous);
  if (await exists(newDir)) return failed(`release ${o.releaseName} already exists; a release is never overwritten`);

  phase("unpack");
  let manifest: Manifest;
  const tmpDir = partialDir(o.root, o.app, o.releaseName);
  try {
    manifest = (await unpackBundle(o.artifactFile, tmpDir, { maxExpansionRatio: o.maxExpansionRatio, maxUnpackedBytes: o.maxUnpackedBytes, maxEntries: o.maxFiles, limitNames: AGENT_LIMIT_NAMES })).manifest;
    await installRelease(o.root, o.app, tmpDir, o.releaseName);
  } catch (err) {
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    return failed(err instanceof ValidationError ? `bundle refused: ${err.message}` : `unpack failed: ${errorMessage(err)}`);
  }

  const envFor = (dir: string, release: string, context: HookContext): Record<string, string> => hookEnv(o, dir, release, context, prevDir);

  const runHook = async (hook: HookName, m: Manifest, dir: string, label: string = hook): Promise<RunResult | undefined> => {
    const env =
      dir === newDir ? envFor(newDir, o.releaseName, "install") : envFor(dir, previous ?? "", label.startsWith("rollback") ? "rollback" : "stop-previous");
    const spec = m.hooks[hook];
    if (!spec) return undefined;
    phase(`hook:${label}`);
    // The way back is not bounded by the apply's deadline: a new release
    // that used up the apply's time (a validate that hung) has stopped the
    // previous one, and `current` is back on it; its start must run, within
    // its own timeout, or the app stays down. The coordinator may time the
    // target out meanwhile; it is FAILED either way.
    const wayBack = label.startsWith("rollback");
    const left = wayBack ? spec.timeoutMs : o.deadlineMs - Date.now();
    if (left <= 0) {
      return { outcome: "failed", exitCode: null, signal: null, timedOut: true, aborted: false, durationMs: 0, linesCut: 0, lastLine: "", outputHeldOpen: false, message: "not started: the apply deadline has passed" };
    }
    // The label, not the hook's name: a rollback's start hook of the previous
    // release prints as "[rollback:start] …", never as the new release's start.
    const prefix = `[${label}] `;
    const r = await runExecutable({
      file: path.join(dir, spec.run),
      cwd: dir,
      env,
      timeoutMs: Math.min(spec.timeoutMs, left),
      ...(o.runAs ? { runAs: o.runAs } : {}),
      maxLines: Math.max(0, o.maxLines - linesDelivered),
      maxLineLength: o.maxLineLength,
      onLines: (lines) => {
        linesDelivered += lines.length;
        o.onLines(lines.map((l) => prefix + l));
      },
      signal: label.startsWith("rollback") ? (o.rollbackSignal ?? o.signal) : o.signal,
    });
    linesCut += r.linesCut;
    if (r.outputHeldOpen && dir === newDir) leftRunning.push(hook);
    return r;
  };
  // The new release's hooks that exited leaving a process that holds their output (runner.ts OUTPUT_DRAIN_MS): said in the result.
  const leftRunning: HookName[] = [];
  const refused = o.mayStart?.();
  if (refused !== undefined) return failed(`not started: ${refused}`);

  if (manifest.sharedDirs.length + manifest.sharedFiles.length > 0) {
    phase("shared");
    try {
      await linkShared(o.root, o.app, newDir, manifest, o.runAs);
    } catch (err) {
      return failed(err instanceof ValidationError ? `bundle refused: ${err.message}` : `linking the shared paths failed: ${errorMessage(err)}`);
    }
  }
  // Only now: from here on the app's account may change the release, and
  // the agent (root) makes no more changes inside it that follow a path.
  if (o.runAs) {
    try {
      await chownTree(newDir, o.runAs);
    } catch (err) {
      return failed(`could not give release ${o.releaseName} to ${o.runAs.user}: ${errorMessage(err)}`);
    }
  }

  // ---- before the switch: a failure leaves `current` untouched ----
  for (const hook of ["before_install", "after_install"] as const) {
    const r = await runHook(hook, manifest, newDir);
    if (r && r.outcome !== "succeeded") return failed(hookFailure(hook, r), { exitCode: r.exitCode });
  }
  // From here the release in place is stopped and `current` switched:
  // recorded first (fsync'd), so that an agent killed before the install
  // ends (SIGKILL, OOM, power loss) goes back to the previous release at
  // its restart (recoverInstall) instead of leaving the app stopped.
  const record: InstallInProgress = {
    schema: "deploy.install-in-progress.v1",
    deploymentId: o.deploymentId,
    release: o.releaseName,
    previous: previous ?? null,
    env: Object.fromEntries(Object.entries(o.env).filter(([k]) => k.startsWith("DEPLOY_"))),
    stage: "installing",
  };
  try {
    await writeInstallInProgress(o.root, o.app, record);
  } catch (err) {
    return failed(`could not record the install in progress, so nothing was stopped: ${errorMessage(err)}`);
  }
  // Kept only when the way back itself was cut short by the agent's
  // shutdown: then the restart goes back.
  let keepRecord = false;
  let result: ApplyBundleResult | undefined;
  try {
    result = await stopSwitchStart();
    return result;
  } finally {
    if (!keepRecord && !(o.keepRecordOnSuccess && result?.outcome === "SUCCEEDED")) await removeInstallInProgress(o.root, o.app).catch(() => undefined);
  }

  async function stopSwitchStart(): Promise<ApplyBundleResult> {
    let stopNote = "";
    if (previous !== undefined && prevDir !== undefined) {
      let prevManifest: Manifest | undefined;
      try {
        prevManifest = parseManifest(await readManifestFile(prevDir));
      } catch (err) {
        // A release without deploy.yaml (installed by hand, or a plain script
        // changeset) has no stop hook; a present but broken one is an error
        // the operator must see rather than a stop silently skipped.
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
          return failed(`deploy.yaml of the current release ${previous} is unreadable: ${errorMessage(err)}`);
        }
      }
      if (prevManifest) {
        const r = await runHook("stop", prevManifest, prevDir);
        if (r && r.outcome !== "succeeded") {
          // Killed by us (a cancel with kill_running, the agent's shutdown):
          // the release in place was being stopped, so it is started again.
          // A stop hook that failed on its own leaves the release as it is.
          if (r.aborted) return goBack(hookFailure("stop", r, ` of release ${previous}`), r.exitCode, false);
          if (!o.ignoreStopFailures || o.signal?.aborted) return failed(hookFailure("stop", r, ` of release ${previous}`), { exitCode: r.exitCode });
          stopNote = `; the ${hookFailure("stop", r, ` of release ${previous}`)}, ignored (ignore_stop_failures)`;
          o.onLines([`[stop] failed, ignored (ignore_stop_failures): ${r.message}`]);
          linesDelivered++;
        }
      }
    }

    phase("switch");
    try {
      await switchCurrent(o.root, o.app, o.releaseName);
    } catch (err) {
      // rename(2) is atomic: `current` still points at the previous release,
      // whose stop hook has run: it is started again.
      return goBack(`could not switch current to ${o.releaseName}: ${errorMessage(err)}`, null, false);
    }

    // ---- after the switch: a failure goes back to the previous release ----
    for (const hook of ["start", "validate"] as const) {
      const r = await runHook(hook, manifest, newDir);
      if (r && r.outcome !== "succeeded") return goBack(hookFailure(hook, r), r.exitCode, true);
    }

    phase("prune");
    let pruneNote = "";
    try {
      await pruneReleases(o.root, o.app, manifest.keepReleases, previous === undefined ? [o.releaseName] : [o.releaseName, previous]);
    } catch (err) {
      // Disk hygiene must not turn a working release into a failed deploy.
      pruneNote = `; pruning old releases failed: ${errorMessage(err)}`;
    }
    const runningNote = leftRunning.length > 0 ? `; left running by its ${leftRunning.join(", ")} hook: a process that holds the hook's output, no longer captured` : "";
    return { outcome: "SUCCEEDED", message: `release ${o.releaseName} is current${stopNote}${pruneNote}${runningNote}`, rolledBack: false, exitCode: 0, linesCut };
  }

  /**
   * Back to the previous release: `current` on it again when the switch
   * was made (`switched`), and its start hook run, within its own timeout
   * and stopped only by the agent's shutdown after its grace (rollbackSignal).
   */
  async function goBack(reason: string, exitCode: number | null, switched: boolean): Promise<ApplyBundleResult> {
    phase("rollback");
    // Best effort: without it a restart after a cut way back goes back only
    // when the journal shows the apply interrupted.
    await writeInstallInProgress(o.root, o.app, { ...record, stage: "going-back", reason: reason.slice(0, 1000) }).catch(() => undefined);
    if (!switched) {
      if (previous === undefined || prevDir === undefined) return failed(reason, { exitCode });
      const startNote = await startPrevious();
      return failed(`${reason}; release ${previous} started again${startNote}`, { exitCode });
    }
    if (previous === undefined || prevDir === undefined) {
      // A first release that fails start/validate: there is nothing to go
      // back to. Leaving `current` on it would present a release that failed
      // its own checks as the live one (and the next deploy would run its
      // stop hook); removing `current` states plainly that nothing is
      // installed. The release directory stays for inspection until pruned.
      try {
        await removeCurrent(o.root, o.app);
      } catch (err) {
        return failed(`${reason}; removing current failed too: ${errorMessage(err)}`, { exitCode });
      }
      return failed(`${reason}; no previous release to roll back to, current removed`, { exitCode });
    }
    try {
      await switchCurrent(o.root, o.app, previous);
    } catch (err) {
      return failed(`${reason}; rolling back to ${previous} failed: ${errorMessage(err)}`, { exitCode });
    }
    const startNote = await startPrevious();
    return failed(`${reason}; rolled back to ${previous}${startNote}`, { rolledBack: true, exitCode });
  }

  /** Runs the previous release's start hook; what went wrong, as a note ("" when it ran). */
  async function startPrevious(): Promise<string> {
    const r = await startAgain(prevDir!, (m) => runHook("start", m, prevDir!, "rollback:start"));
    // Cut short by the agent's shutdown: the restart runs it again.
    if (r.aborted) keepRecord = true;
    return r.note;
  }
}

const hookFailure = (hook: string, r: RunResult, where = ""): string => `${hook} hook${where} failed: ${r.message}${r.lastLine ? ` (last output: ${r.lastLine})` : ""}`;

/**
 * The way back's last step, in an install and at an agent's restart
 * (recoverInstall): the start hook of the release in `dir`, run by `run`.
 * `note` says what went wrong ("" when it ran, or the release has no
 * deploy.yaml or no start hook); `ran` whether it ran and succeeded;
 * `aborted` whether the agent's shutdown cut it short.
 */
async function startAgain(dir: string, run: (m: Manifest) => Promise<RunResult | undefined>): Promise<{ note: string; ran: boolean; aborted: boolean }> {
  let r: RunResult | undefined;
  try {
    r = await run(parseManifest(await readManifestFile(dir)));
  } catch (err) {
    const note = (err as NodeJS.ErrnoException).code === "ENOENT" ? "" : `, but its deploy.yaml is unreadable: ${errorMessage(err)}`;
    return { note, ran: false, aborted: false };
  }
  if (r === undefined) return { note: "", ran: false, aborted: false };
  return { note: r.outcome === "succeeded" ? "" : `, but its ${hookFailure("start", r)}`, ran: r.outcome === "succeeded", aborted: r.aborted };
}

export interface RecoverInstallOptions {
  root: string;
  app: string;
  /** The install an agent was killed in the middle of (releases.ts readInstallInProgress). */
  record: InstallInProgress;
  /** The app's variables from the agent's config; the record's DEPLOY_* ones are added. */
  env: Record<string, string>;
  runAs?: RunAs;
  maxLines: number;
  maxLineLength: number;
  onLines: (lines: string[]) => void;
  /** The agent's shutdown: kills the start hook. */
  signal?: AbortSignal;
}

/**
 * At an agent's start, for an install it was killed in the middle of: back
 * to the previous release as a failed install goes back, so the app is not
 * left stopped. `current` on the previous release again (or removed, when
 * the install was the app's first), then its start hook run within its own
 * timeout. The record is removed unless the agent's shutdown cut the start
 * short. Returns what was done, for the interrupted apply's result.
 */
export async function recoverInstall(o: RecoverInstallOptions): Promise<string> {
  const { record } = o;
  // Cut short on its way back from a failure: that failure is the news.
  const from = record.stage === "going-back" && record.reason ? `it had failed (${record.reason}) and was going back: ` : "";
  const current = await readCurrent(o.root, o.app);
  if (record.previous === null) {
    if (current === record.release) await removeCurrent(o.root, o.app);
    await removeInstallInProgress(o.root, o.app);
    return `${from}${current === record.release ? `there was no previous release: current (${record.release}) removed` : "there was no previous release"}`;
  }
  const prevDir = releaseDir(o.root, o.app, record.previous);
  if (!(await exists(prevDir))) {
    await removeInstallInProgress(o.root, o.app);
    return `${from}the previous release ${record.previous} is gone: current left on ${current ?? "nothing"}`;
  }
  const previous = record.previous;
  const switched = current !== previous;
  if (switched) await switchCurrent(o.root, o.app, previous);
  const back = `${from}${switched ? `rolled back to ${previous}` : `release ${previous} started again`}`;
  const r = await startAgain(prevDir, async (m) => {
    const spec = m.hooks.start;
    if (!spec) return undefined;
    return runExecutable({
      file: path.join(prevDir, spec.run),
      cwd: prevDir,
      env: hookEnv({ env: { ...o.env, ...record.env }, root: o.root, app: o.app }, prevDir, previous, "rollback", undefined),
      timeoutMs: spec.timeoutMs,
      ...(o.runAs ? { runAs: o.runAs } : {}),
      maxLines: o.maxLines,
      maxLineLength: o.maxLineLength,
      onLines: (lines) => o.onLines(lines.map((l) => `[rollback:start] ${l}`)),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  });
  if (!r.aborted) await removeInstallInProgress(o.root, o.app);
  return r.ran ? `${back} and ran its start hook` : `${back}${r.note}`;
}

type HookContext = "install" | "stop-previous" | "rollback";

/**
 * What a hook sees: the release it belongs to. The new release's hooks get
 * DEPLOY_RELEASE_DIR = the new release; the current release's stop hook
 * and its start hook on the way back get their own (old) release, so a
 * start script that uses $DEPLOY_RELEASE_DIR starts the release it came
 * with. DEPLOY_VERSION is always the version being deployed;
 * DEPLOY_HOOK_CONTEXT says why the hook runs.
 */
function hookEnv(o: { env: Record<string, string>; root: string; app: string }, dir: string, release: string, context: HookContext, prevDir: string | undefined): Record<string, string> {
  return {
    ...o.env,
    DEPLOY_RELEASE: release,
    DEPLOY_RELEASE_DIR: dir,
    DEPLOY_PREVIOUS_RELEASE_DIR: context === "install" ? (prevDir ?? "") : "",
    DEPLOY_HOOK_CONTEXT: context,
    DEPLOY_SHARED_DIR: sharedDir(o.root, o.app),
  };
}

function validateOptions(o: ApplyBundleOptions): void {
  checkReleaseName(o.releaseName);
  appDir(o.root, o.app);
  if (!path.isAbsolute(o.root)) throw new Error(`root must be an absolute path: ${o.root}`);
  if (!path.isAbsolute(o.artifactFile)) throw new Error(`artifactFile must be an absolute path: ${o.artifactFile}`);
  if (!(Number.isInteger(o.artifactSize) && o.artifactSize >= 0)) throw new Error("artifactSize must be a non-negative integer");
  if (!(Number.isFinite(o.maxExpansionRatio) && o.maxExpansionRatio > 0)) throw new Error("maxExpansionRatio must be a positive number");
  if (!Number.isFinite(o.deadlineMs)) throw new Error("deadlineMs must be a number");
  if (!(Number.isInteger(o.maxLines) && o.maxLines >= 0)) throw new Error("maxLines must be a non-negative integer");
  if (!(Number.isInteger(o.maxLineLength) && o.maxLineLength >= 1)) throw new Error("maxLineLength must be a positive integer");
}

/**
 * A release's deploy.yaml, never through a symlink: the release may belong
 * to the app's account, which must not make the agent read (and quote in a
 * parse error) a file only root may read.
 */
async function readManifestFile(dir: string): Promise<string> {
  const fh = await fs.open(path.join(dir, MANIFEST_FILE), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
