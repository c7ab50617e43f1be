// Applies one claimed command: a changeset with a bundle is installed as a
// release (download, verify, unpack, hooks, atomic switch, rollback); one
// without runs the app's configured deploy executable. Either way the output
// becomes bounded progress events and the outcome a JournalResult. Never
// throws for a failing apply: the failure is the result.
import { join } from "node:path";
import { errorMessage, eventBudget, releaseName as sharedReleaseName, type Command } from "../../shared/src/index.js";
import type { AppConfig } from "./config.js";
import { report, type HandlerDeps, type KillWatch } from "./handleCommand.js";
import type { JournalResult } from "./journal.js";
import { runExecutable } from "./runner.js";

// The bundle code (tar, the object store client) loads at the first apply
// of a bundle, not with this module: compiling it took 24-33 ms of the
// event loop (and 2-6 MB), which the first apply of a deploy executable
// paid on its way to the spawn (fan-out 10, cold, one host process: its
// agents' spawns began 18 ms after their look; 0.1 ms once loaded).
type BundleCode = [typeof import("./artifactCache.js"), typeof import("./bundle/applyBundle.js")];
let bundleCode: Promise<BundleCode> | undefined;
/** Starts loading the bundle code (once): called as a command with an artifact arrives, so it loads while the journal and the race wait. */
export const loadBundleCode = (): Promise<BundleCode> => (bundleCode ??= Promise.all([import("./artifactCache.js"), import("./bundle/applyBundle.js")]));

/** `<version>-<last 8 of the deployment id>`, safe as a directory name (names.ts: the coordinator names the desired release the same way). */
export function releaseName(cmd: Command): string {
  return sharedReleaseName(cmd.changeset.version, cmd.deploymentId);
}

/**
 * After a bundle's successful install, once its result is journaled: forgets
 * the record of the install in progress that applyBundle left for this
 * (keepRecordOnSuccess). Until then a crash goes back to the previous
 * release at the restart, and the apply is reported interrupted; after, the
 * journal has the success. A removal that fails is left to the next start
 * (recovery.ts settleInstall: the journal shows the apply finished, so the
 * record is removed and nothing is undone).
 */
export async function endInstall(deps: Pick<HandlerDeps, "config" | "log">, cmd: Command): Promise<void> {
  const { removeInstallInProgress } = await import("./bundle/releases.js");
  await removeInstallInProgress(deps.config.root, cmd.app).catch((err: unknown) =>
    deps.log.warn({ deploymentId: cmd.deploymentId, app: cmd.app, err: errorMessage(err) }, "could not remove the record of the finished install; the next start removes it"),
  );
}

/** Progress events go out in order, one at a time, without holding up the apply (the started event is stored before the apply begins). */
function progressReporter(deps: HandlerDeps, cmd: Command): { onLines: (lines: string[]) => void; flushed: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  let batch = 0;
  return {
    onLines: (all) => {
      const n = ++batch;
      const { lines, linesCut } = fitLines(all, eventBudget(deps.ctx.nc));
      chain = chain.then(() =>
        report(deps, cmd.deploymentId, { type: "target.progress", agentId: deps.config.id, lines, linesCut }, `progress.${n}`).then(
          () => undefined,
          (err: unknown) => deps.log.warn({ deploymentId: cmd.deploymentId, err: errorMessage(err) }, "progress not reported"),
        ),
      );
    },
    flushed: () => chain,
  };
}

/**
 * The longest prefix of `lines` whose progress event fits `budget` bytes (a
 * server with a small max_payload); the rest are counted as cut. A batch is
 * at most 20 lines of at most maxLineLength characters, so this is cheap.
 */
export function fitLines(lines: string[], budget: number): { lines: string[]; linesCut: number } {
  // The event's envelope (schema, ids, time, type) is under 400 bytes; JSON escaping may double a line.
  let size = 400;
  let n = 0;
  for (const l of lines) {
    size += Buffer.byteLength(JSON.stringify(l)) + 1;
    if (size > budget) break;
    n++;
  }
  return { lines: lines.slice(0, n), linesCut: lines.length - n };
}

function baseEnv(deps: HandlerDeps, cmd: Command): Record<string, string> {
  return {
    DEPLOY_ID: cmd.deploymentId,
    DEPLOY_APP: cmd.app,
    DEPLOY_ENVIRONMENT: cmd.environment,
    DEPLOY_VERSION: cmd.changeset.version,
    DEPLOY_AGENT_ID: deps.config.id,
  };
}

const failed = (message: string, started: number): JournalResult => ({
  outcome: "FAILED",
  message,
  exitCode: null,
  durationMs: Date.now() - started,
  finishedAt: new Date().toISOString(),
});

/**
 * `after` settles once the target's started event is stored (or will not
 * be): the apply runs beside that report, its progress events go out after
 * it.
 */
export async function applyCommand(
  deps: HandlerDeps,
  cmd: Command,
  app: AppConfig,
  /** The start lease: asked right before the first process (executable or hook) starts. */
  mayStart?: () => string | undefined,
  /**
   * performance.now() before the agent raced for its target. The apply's
   * time counts from there, not from now: the coordinator's apply timeout
   * counts from the stored start, which an agent that learned late that it
   * won (a lost reply, a slow server) may hear of seconds after. Counted
   * from the race, the apply is killed (or never begins) before the
   * coordinator can time the target out.
   */
  racedAt: number = performance.now(),
  /** A kill asked with the deployment's cancel (kill_running): stops the apply as the agent's shutdown does, but a bundle still goes back to its previous release. */
  killed?: KillWatch,
): Promise<JournalResult> {
  const started = Date.now();
  // What stops the apply's processes: the agent's shutdown, or the kill.
  const linked = killed ? eitherSignal(deps.kill, killed.signal) : undefined;
  const stop = linked?.signal ?? deps.kill;
  /** The result's message when a kill (not the shutdown) stopped it. */
  const killedMessage = (): string | undefined => (killed?.signal.aborted && !deps.kill.aborted ? String(killed.signal.reason) : undefined);
  const left = (): number => racedAt + cmd.applyTimeoutMs - performance.now();
  const mayBegin = (): string | undefined =>
    left() <= 0
      ? `the apply timeout of ${cmd.applyTimeoutMs} ms, counted from this agent's start, had run out before it could begin (its start was confirmed ${Math.round(performance.now() - racedAt)} ms after it was sent)`
      : mayStart?.();
  const progress = progressReporter(deps, cmd);
  // Phase durations for metrics: each phase ends when the next begins.
  let phase: { name: string; at: number } | undefined;
  const endPhase = (next: string | undefined): void => {
    if (phase) deps.metrics?.hookDuration.observe({ phase: phase.name }, (Date.now() - phase.at) / 1000);
    phase = next === undefined ? undefined : { name: next, at: Date.now() };
  };
  const cut = (n: number): string => (n > 0 ? `; ${n} output line(s) cut after ${deps.config.maxOutputLines}` : "");
  try {
    const artifact = cmd.changeset.artifact;
    if (artifact) {
      const [{ fetchArtifact }, { applyBundle }] = await loadBundleCode();
      let file: string;
      try {
        file = await fetchArtifact(deps.ctx.nc, deps.ctx.js, cmd.app, join(deps.config.stateDir, "artifacts"), artifact, stop, deps.log);
      } catch (err) {
        return failed(killedMessage() ?? `artifact ${artifact.name} ${artifact.digest} could not be fetched: ${errorMessage(err)}`, started);
      }
      const r = await applyBundle({
        artifactFile: file,
        artifactSize: artifact.size,
        root: deps.config.root,
        app: cmd.app,
        releaseName: releaseName(cmd),
        deploymentId: cmd.deploymentId,
        env: { ...app.env, ...baseEnv(deps, cmd) },
        maxExpansionRatio: deps.config.maxExpansionRatio,
        maxUnpackedBytes: deps.config.maxUnpackedBytes,
        maxFiles: deps.config.maxFiles,
        deadlineMs: Date.now() + left(),
        maxLines: deps.config.maxOutputLines,
        maxLineLength: deps.config.maxLineLength,
        onLines: progress.onLines,
        mayStart: mayBegin,
        ignoreStopFailures: cmd.ignoreStopFailures === true,
        ...(app.runAs ? { runAs: app.runAs } : {}),
        // Removed by endInstall once the result is journaled.
        keepRecordOnSuccess: true,
        // A kill stops the new release's hooks; going back to the previous release runs its start hook all the same.
        rollbackSignal: deps.killWayBack ?? deps.kill,
        onPhase: (phase) => {
          deps.log.debug({ deploymentId: cmd.deploymentId, phase }, "apply phase");
          endPhase(phase);
        },
        signal: stop,
      });
      endPhase(undefined);
      await progress.flushed();
      return {
        outcome: r.outcome,
        message: deps.kill.aborted ? `interrupted by agent shutdown: ${r.message}` : r.message + cut(r.linesCut),
        exitCode: r.exitCode,
        durationMs: Date.now() - started,
        finishedAt: new Date().toISOString(),
        ...(r.rolledBack ? { rolledBack: true } : {}),
      };
    }
    if (!app.deploy) return failed(`app ${cmd.app} has no deploy executable on this agent and the changeset has no artifact`, started);
    const notNow = mayBegin();
    if (notNow !== undefined) return failed(`not started: ${notNow}`, started);
    const r = await runExecutable({
      file: app.deploy,
      env: { ...app.env, ...baseEnv(deps, cmd) },
      ...(app.runAs ? { runAs: app.runAs } : {}),
      timeoutMs: Math.max(1, Math.floor(left())),
      maxLines: deps.config.maxOutputLines,
      maxLineLength: deps.config.maxLineLength,
      onLines: progress.onLines,
      signal: stop,
      mayStart: mayBegin,
    });
    await progress.flushed();
    return {
      outcome: r.outcome === "succeeded" ? "SUCCEEDED" : "FAILED",
      message: r.aborted
        ? (killedMessage() ?? "interrupted by agent shutdown: the apply was killed")
        : r.message + cut(r.linesCut) + (r.outputHeldOpen ? "; left running: a process it started that holds its output, no longer captured" : ""),
      exitCode: r.exitCode,
      durationMs: r.durationMs,
      finishedAt: new Date().toISOString(),
    };
  } catch (err) {
    // A bug or an unexpected I/O error: still a result, never a crash.
    await progress.flushed();
    return failed(`apply failed: ${errorMessage(err)}`, started);
  } finally {
    linked?.dispose();
  }
}

/**
 * A signal aborted with whichever of `a` and `b` aborts first, until
 * dispose(). Not AbortSignal.any: on Node 20 every call left a WeakRef in
 * the long-lived signal's set of dependants (the agent's shutdown signal
 * held one per apply for the life of the process: 1,197 after 400
 * deployments to 3 agents).
 */
export function eitherSignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onA = (): void => ac.abort(a.reason);
  const onB = (): void => ac.abort(b.reason);
  const dispose = (): void => {
    a.removeEventListener("abort", onA);
    b.removeEventListener("abort", onB);
  };
  if (a.aborted) ac.abort(a.reason);
  else if (b.aborted) ac.abort(b.reason);
  else {
    a.addEventListener("abort", onA, { once: true });
    b.addEventListener("abort", onB, { once: true });
  }
  return { signal: ac.signal, dispose };
}
