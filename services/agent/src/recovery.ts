// At an agent's start: the installs it was killed in the middle of, after
// the release in place began to stop (bundle/releases.ts
// InstallInProgress), are taken back to the previous release, as a failed
// install is, before the interrupted apply is reported. Only the record
// file is read at every start; the bundle code loads when there is one.
import type { Logger } from "../../shared/src/index.js";
import { errorMessage } from "../../shared/src/index.js";
import type { AgentConfig } from "./config.js";
import { readInstallInProgress, removeInstallInProgress, type InstallInProgress } from "./bundle/releases.js";

export interface PendingInstall {
  app: string;
  record: InstallInProgress;
}

/** The installs recorded in progress, by deployment id; an unreadable record is logged and left for the operator. */
export async function installsInProgress(config: AgentConfig, log: Logger): Promise<Map<string, PendingInstall>> {
  const out = new Map<string, PendingInstall>();
  for (const app of Object.keys(config.apps)) {
    try {
      const record = await readInstallInProgress(config.root, app);
      if (record) out.set(record.deploymentId, { app, record });
    } catch (err) {
      log.error({ app, err: errorMessage(err) }, "the record of an install in progress is unreadable: not going back; remove it once the app is checked");
    }
  }
  return out;
}

/** Goes back for an interrupted apply's install; what was done, for its result. */
export async function goBackAfterCrash(config: AgentConfig, pending: PendingInstall, signal: AbortSignal, log: Logger): Promise<string> {
  const { recoverInstall } = await import("./bundle/applyBundle.js");
  const app = config.apps[pending.app]!;
  const alog = log.child({ deploymentId: pending.record.deploymentId, app: pending.app });
  alog.warn({ release: pending.record.release, previous: pending.record.previous }, "the agent was killed in the middle of an install: going back to the previous release");
  try {
    const note = await recoverInstall({
      root: config.root,
      app: pending.app,
      record: pending.record,
      env: app.env ?? {},
      ...(app.runAs ? { runAs: app.runAs } : {}),
      maxLines: config.maxOutputLines,
      maxLineLength: config.maxLineLength,
      onLines: (lines) => {
        for (const line of lines) alog.info({ line }, "hook output");
      },
      signal,
    });
    alog.warn({ note }, "went back after the interrupted install");
    return note;
  } catch (err) {
    alog.error({ err: errorMessage(err) }, "could not go back after the interrupted install");
    return `going back to ${pending.record.previous ?? "no release"} failed: ${errorMessage(err)}`;
  }
}

/**
 * A record whose apply the journal does not show interrupted: left on the
 * way back (its result journaled; the shutdown cut the previous release's
 * start short) goes back now; left installing, its removal failed after
 * the install ended, and nothing is undone.
 */
export async function settleInstall(config: AgentConfig, pending: PendingInstall, signal: AbortSignal, log: Logger): Promise<void> {
  if (pending.record.stage === "going-back") {
    await goBackAfterCrash(config, pending, signal, log);
    return;
  }
  log.warn({ app: pending.app, deploymentId: pending.record.deploymentId }, "a record of an install in progress whose apply is not interrupted: removed, nothing undone");
  await removeInstallInProgress(config.root, pending.app).catch((err: unknown) => log.warn({ app: pending.app, err: errorMessage(err) }, "could not remove it"));
}
