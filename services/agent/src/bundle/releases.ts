// The release layout of one app on a VM, Capistrano style:
//
//   <root>/<app>/releases/<name>/        one directory per installed release
//   <root>/<app>/current -> releases/<name>   relative symlink, switched atomically
//   <root>/<app>/.installed/<name>       empty marker whose mtime is the install time
//
// Install order is kept in the markers rather than in the release
// directories' own mtimes, because hooks run inside the release directories
// and every file they create there bumps the directory's mtime; pruning by it
// could delete a newer release and keep an old one.
//
// Crash safety: a release becomes visible under its name only by a rename of
// a fully unpacked `<name>.partial-<random>` directory, and `current` changes
// only by renaming a complete new symlink over it, so after a SIGKILL at any
// moment `current` points at a complete release (or does not exist), and
// cleanPartial removes what the crash left behind.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

const RELEASES = "releases";
const CURRENT = "current";
const MARKERS = ".installed";
const PARTIAL = ".partial-";
const CURRENT_TMP = `${CURRENT}.tmp-`;

export function appDir(root: string, app: string): string {
  if (app === "" || app === "." || app === ".." || app.includes("/") || app.includes("\0")) throw new Error(`invalid app name: ${JSON.stringify(app)}`);
  return path.join(root, app);
}

export function releasesDir(root: string, app: string): string {
  return path.join(appDir(root, app), RELEASES);
}

export function releaseDir(root: string, app: string, name: string): string {
  checkReleaseName(name);
  return path.join(releasesDir(root, app), name);
}

/** Names are chosen by the agent (`<version>-<short deployment id>`); anything else is a programming error. */
export function checkReleaseName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0") || name.includes(PARTIAL) || name.startsWith(".")) {
    throw new Error(`invalid release name: ${JSON.stringify(name)}`);
  }
}

/** A fresh, unused directory path to unpack `name` into before installRelease. */
export function partialDir(root: string, app: string, name: string): string {
  checkReleaseName(name);
  return path.join(releasesDir(root, app), `${name}${PARTIAL}${randomBytes(6).toString("hex")}`);
}

/** The release `current` points at, or undefined when there is none. */
export async function readCurrent(root: string, app: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await fs.readlink(path.join(appDir(root, app), CURRENT));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const parts = target.split("/").filter((s) => s !== "" && s !== ".");
  if (path.isAbsolute(target) || parts.length !== 2 || parts[0] !== RELEASES) {
    throw new Error(`${path.join(appDir(root, app), CURRENT)} points at ${target}, not at ${RELEASES}/<name>`);
  }
  return parts[1];
}

/** Moves a fully unpacked directory into place as release `name`; fails if that name is taken. */
export async function installRelease(root: string, app: string, unpackedDir: string, name: string): Promise<string> {
  const dest = releaseDir(root, app, name);
  // rename(2) would silently replace an empty directory: check first. The
  // agent applies one command per app at a time, so nothing races this.
  if (await exists(dest)) throw new Error(`release ${name} already exists`);
  const markers = path.join(appDir(root, app), MARKERS);
  await fs.mkdir(markers, { recursive: true });
  // Marker first: an orphan marker is harmless (cleanPartial removes it).
  await fs.writeFile(path.join(markers, name), "");
  await fs.rename(unpackedDir, dest);
  await fsyncDir(releasesDir(root, app));
  return dest;
}

/** Points `current` at release `name` atomically: a new symlink renamed over the old one. */
export async function switchCurrent(root: string, app: string, name: string): Promise<void> {
  const dir = appDir(root, app);
  const target = path.join(RELEASES, name);
  checkReleaseName(name);
  const st = await fs.stat(path.join(dir, target));
  if (!st.isDirectory()) throw new Error(`release ${name} is not a directory`);
  const tmp = path.join(dir, `${CURRENT_TMP}${randomBytes(6).toString("hex")}`);
  await fs.symlink(target, tmp);
  await renameInto(dir, tmp, CURRENT);
}

/**
 * What an install that has begun to stop the release in place records, so
 * that an agent killed in the middle (SIGKILL, OOM, power loss) goes back at
 * its restart: `current` on `previous` again (or removed when there was
 * none), and `previous`'s start hook run. Kept at <app>/.install-in-progress.json,
 * in the agent's own directory, never the app account's.
 */
export interface InstallInProgress {
  schema: "deploy.install-in-progress.v1";
  deploymentId: string;
  /** The release being installed. */
  release: string;
  /** The release `current` pointed at before, whose stop hook may have run; null for a first install. */
  previous: string | null;
  /** The DEPLOY_* variables the install's hooks had (DEPLOY_ID, DEPLOY_VERSION, …), for the start hook run on the way back. */
  env: Record<string, string>;
  /**
   * "installing" until the install fails; "going-back" while it goes back
   * to the previous release. A record left "going-back" was cut short on
   * the way back (the agent's shutdown after its grace, a crash), after the
   * apply's result may have been journaled: the restart goes back whatever
   * the journal says. One left "installing" goes back only for an apply the
   * journal shows interrupted (otherwise its removal failed after the
   * install ended).
   */
  stage: "installing" | "going-back";
  /** With "going-back": the failure it goes back from, so a restart on the way back still says why the install failed. */
  reason?: string;
}

const IN_PROGRESS = ".install-in-progress.json";

/** Records `m` durably (a temporary file fsync'd, renamed into place, the directory fsync'd). */
export async function writeInstallInProgress(root: string, app: string, m: InstallInProgress): Promise<void> {
  const dir = appDir(root, app);
  const tmp = path.join(dir, `${IN_PROGRESS}.tmp-${randomBytes(6).toString("hex")}`);
  const fh = await fs.open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(m)}\n`, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await renameInto(dir, tmp, IN_PROGRESS);
}

/** The install recorded in progress for `app`, or undefined; throws naming the file when it is unreadable. */
export async function readInstallInProgress(root: string, app: string): Promise<InstallInProgress | undefined> {
  const file = path.join(appDir(root, app), IN_PROGRESS);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let m: Partial<InstallInProgress>;
  try {
    m = JSON.parse(text) as Partial<InstallInProgress>;
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  const envOk = typeof m.env === "object" && m.env !== null && Object.values(m.env).every((v) => typeof v === "string");
  if (m.schema !== "deploy.install-in-progress.v1" || (m.stage !== "installing" && m.stage !== "going-back") || typeof m.deploymentId !== "string" || typeof m.release !== "string" || !(m.previous === null || typeof m.previous === "string") || !envOk) {
    throw new Error(`${file} is not an install in progress of this agent (schema deploy.install-in-progress.v1)`);
  }
  checkReleaseName(m.release);
  if (m.previous !== null) checkReleaseName(m.previous);
  // Only words for a result message: one that is not a string is dropped, not fatal.
  if (m.reason !== undefined && typeof m.reason !== "string") delete m.reason;
  return m as InstallInProgress;
}

/** Forgets the install in progress (durably). */
export async function removeInstallInProgress(root: string, app: string): Promise<void> {
  const dir = appDir(root, app);
  await fs.rm(path.join(dir, IN_PROGRESS), { force: true });
  await fsyncDir(dir);
}

/** Removes `current` (nothing is installed afterwards). */
export async function removeCurrent(root: string, app: string): Promise<void> {
  const dir = appDir(root, app);
  await fs.rm(path.join(dir, CURRENT), { force: true });
  await fsyncDir(dir);
}

/** Complete releases, oldest first by install time (marker mtime, else the directory's own). */
export async function listReleases(root: string, app: string): Promise<string[]> {
  const dir = releasesDir(root, app);
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.includes(PARTIAL) && !d.name.startsWith(".")).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const markers = path.join(appDir(root, app), MARKERS);
  const keyed = await Promise.all(
    names.map(async (name) => {
      const st = await fs.stat(path.join(markers, name), { bigint: true }).catch(() => fs.stat(path.join(dir, name), { bigint: true }));
      return { name, at: st.mtimeNs };
    }),
  );
  keyed.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return keyed.map((k) => k.name);
}

/**
 * Deletes all but the newest `keep` releases, never one named in `protect`
 * (the caller passes current and previous). Returns the deleted names.
 */
export async function pruneReleases(root: string, app: string, keep: number, protect: readonly string[]): Promise<string[]> {
  if (!(Number.isInteger(keep) && keep >= 1)) throw new Error("keep must be a positive integer");
  const all = await listReleases(root, app);
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((n) => !protect.includes(n));
  for (const name of doomed) {
    await removeRelease(releaseDir(root, app, name));
    await fs.rm(path.join(appDir(root, app), MARKERS, name), { force: true });
  }
  return doomed;
}

/** Removes what a crash mid-unpack or mid-switch left: partial release dirs, temporary links, orphan markers. */
export async function cleanPartial(root: string, app: string): Promise<void> {
  const dir = appDir(root, app);
  const rel = releasesDir(root, app);
  for (const name of await readdirOrEmpty(rel)) {
    if (name.includes(PARTIAL)) await fs.rm(path.join(rel, name), { recursive: true, force: true });
  }
  for (const name of await readdirOrEmpty(dir)) {
    if (name.startsWith(CURRENT_TMP) || name.startsWith(`${IN_PROGRESS}.tmp-`)) await fs.rm(path.join(dir, name), { force: true });
  }
  const releases = new Set(await readdirOrEmpty(rel));
  for (const name of await readdirOrEmpty(path.join(dir, MARKERS))) {
    if (!releases.has(name)) await fs.rm(path.join(dir, MARKERS, name), { force: true });
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Renames `tmp` (in `dir`) over `dir`/`name` atomically and durably; a failed rename removes `tmp`. */
async function renameInto(dir: string, tmp: string, name: string): Promise<void> {
  try {
    await fs.rename(tmp, path.join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Makes a rename or unlink in `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `p` and, for a directory, everything in it, links themselves (never what
 * they point at), owned by `owner`. Deepest first: a directory is given
 * away only once everything in it is, so while the agent works inside a
 * directory, it and every directory above it are still the agent's, and
 * the new owner cannot swap one for a link that would send a later lchown
 * to a file elsewhere.
 */
export async function chownTree(p: string, owner: { uid: number; gid: number }): Promise<void> {
  if ((await fs.lstat(p)).isDirectory()) {
    for (const e of await fs.readdir(p)) await chownTree(path.join(p, e), owner);
  }
  await fs.lchown(p, owner.uid, owner.gid);
}

/**
 * Removes a release directory. One that another account owns (the app's,
 * apps.<app>.user) is emptied as that account first (find -delete, which
 * never follows a link), then removed if it is empty: a recursive remove
 * as root of a tree its owner can change meanwhile could be sent through a
 * link the owner swaps in, and delete files elsewhere.
 */
async function removeRelease(dir: string): Promise<void> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory() && process.getuid?.() === 0 && st.uid !== 0) {
    await new Promise<void>((resolve, reject) =>
      execFile("find", [dir, "-mindepth", "1", "-delete"], { uid: st.uid, gid: st.gid, cwd: "/" }, (err, _out, stderr) =>
        err ? reject(new Error(`emptying ${dir} as uid ${st.uid} failed: ${String(stderr).trim() || err.message}`)) : resolve(),
      ),
    );
    await fs.rmdir(dir);
    return;
  }
  await fs.rm(dir, { recursive: true, force: true });
}
