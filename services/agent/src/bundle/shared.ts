// Shared paths (deploy.yaml shared_dirs, shared_files): data that outlives
// releases, as Capistrano's linked_dirs and Deployer's shared_dirs. They
// live in <root>/<app>/shared/<path>; in each new release <path> is a
// symlink there, made after the unpack and before the first hook.
//
// The first release that names a path seeds it: what the bundle holds there
// is copied into shared/ (a directory's contents, or the file), else an
// empty directory or file is made. After that, shared/ wins: the bundle's
// copy is removed from the release and replaced by the link, so uploads,
// logs or a local .env are never overwritten by a deploy. A rollback goes
// back to a release whose links point at the same data.
import fs from "node:fs/promises";
import path from "node:path";
import type { Manifest } from "../../../shared/src/bundle/manifest.js";
import { ValidationError } from "../../../shared/src/errors.js";
import { appDir, chownTree } from "./releases.js";
import type { RunAs } from "../runAs.js";

/** <root>/<app>/shared: DEPLOY_SHARED_DIR of every hook. */
export function sharedDir(root: string, app: string): string {
  return path.join(appDir(root, app), "shared");
}

async function lstatOrUndefined(p: string): Promise<Awaited<ReturnType<typeof fs.lstat>> | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Makes every shared path of `manifest` a link from `release` (the new
 * release's directory) into sharedDir, seeding what is not there yet.
 * Throws a ValidationError naming the path when the bundle or shared/ holds
 * the wrong kind of entry there (a file where a directory is shared, a
 * symlink).
 */
export async function linkShared(root: string, app: string, release: string, manifest: Manifest, owner?: RunAs): Promise<void> {
  const shared = sharedDir(root, app);
  await fs.mkdir(shared, { recursive: true, mode: 0o755 });
  const entries = [...manifest.sharedDirs.map((p) => ({ p, dir: true })), ...manifest.sharedFiles.map((p) => ({ p, dir: false }))];
  for (const { p, dir } of entries) {
    const field = dir ? "shared_dirs" : "shared_files";
    const kind = dir ? "directory" : "regular file";
    const inRelease = path.join(release, p);
    const target = path.join(shared, p);
    // Every parent in the release must be a real directory of the release:
    // a bundle's (relative) symlink there would send the link elsewhere.
    for (let parent = path.dirname(inRelease); parent.length > release.length; parent = path.dirname(parent)) {
      const st = await lstatOrUndefined(parent);
      if (st && !st.isDirectory()) throw new ValidationError(field, `"${p}": ${path.relative(release, parent)} is not a directory in the bundle`);
    }
    const bundled = await lstatOrUndefined(inRelease);
    if (bundled && (dir ? !bundled.isDirectory() : !bundled.isFile())) throw new ValidationError(field, `"${p}" is not a ${kind} in the bundle`);
    // shared/<p> may be a symlink an operator made (uploads on a mounted volume): what it points at counts.
    let kept = await lstatOrUndefined(target);
    if (kept?.isSymbolicLink()) kept = await fs.stat(target).catch(() => kept);
    if (kept && (dir ? !kept.isDirectory() : !kept.isFile())) throw new ValidationError(field, `${target} exists and is not a ${kind}`);
    if (!kept) {
      await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      if (bundled && dir) await fs.cp(inRelease, target, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
      else if (bundled) await fs.copyFile(inRelease, target, fs.constants.COPYFILE_EXCL);
      else if (dir) await fs.mkdir(target, { mode: 0o755 });
      else await fs.writeFile(target, "", { flag: "wx", mode: 0o644 });
      // The seeded path is the app's data, written by the app's account; the
      // directories above it stay the agent's, so the app cannot swap them
      // for links that would send a later seed elsewhere.
      if (owner) await chownTree(target, owner);
    }
    if (bundled) await fs.rm(inRelease, { recursive: true, force: true });
    await fs.mkdir(path.dirname(inRelease), { recursive: true, mode: 0o755 });
    await fs.symlink(target, inRelease);
  }
}
