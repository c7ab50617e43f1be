// Extracts a changeset bundle into a fresh directory, applying exactly the
// checks inspectBundle applies (the same walkBundle/checkEntry), so the agent
// never trusts that the coordinator checked. Nothing is written through a
// link (checkEntry refuses entries under a symlink, and files are opened
// with O_EXCL), so a hostile archive cannot write outside destDir even
// before the whole-archive checks run at the end.
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { walkBundle, type BundleInfo, type CheckedEntry } from "../../../shared/src/bundle/inspect.js";

export interface UnpackOptions {
  maxExpansionRatio: number;
  maxEntries?: number;
}

/**
 * Extracts `file` (.tar.gz) into `destDir`, which must not exist (its parent
 * is created if needed). On any refusal or error destDir is removed and the
 * error thrown: ValidationError for a bad bundle, the fs error otherwise.
 * The caller renames destDir into place afterwards.
 */
export async function unpackBundle(file: string, destDir: string, opts: UnpackOptions): Promise<BundleInfo> {
  const { size } = await fs.stat(file);
  await fs.mkdir(path.dirname(destDir), { recursive: true });
  await fs.mkdir(destDir, { mode: 0o755 }); // EEXIST: never unpack over something
  try {
    const dirModes: [string, number][] = [];
    const info = await walkBundle(
      createReadStream(file, { highWaterMark: 16 * 1024 }),
      { maxExpansionRatio: opts.maxExpansionRatio, compressedSize: size, maxEntries: opts.maxEntries },
      (entry, body) => writeEntry(destDir, entry, body, dirModes),
    );
    // Modes of directories last, deepest first, so a read-only directory
    // does not stop its own contents from being written.
    for (const [dir, mode] of dirModes.reverse()) await fs.chmod(dir, mode);
    return info;
  } catch (err) {
    await fs.rm(destDir, { recursive: true, force: true });
    throw err;
  }
}

async function writeEntry(destDir: string, entry: CheckedEntry, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, dirModes: [string, number][]): Promise<void> {
  const target = path.join(destDir, entry.path);
  if (entry.kind === "directory") {
    await fs.mkdir(target, { recursive: true });
    // The owner always keeps rwx: pruning must be able to delete the release.
    dirModes.push([target, entry.mode | 0o700]);
    return;
  }
  await fs.mkdir(path.dirname(target), { recursive: true });
  if (entry.kind === "symlink") {
    await fs.symlink(entry.target, target);
    return;
  }
  // "wx": O_CREAT|O_EXCL never follows an existing link or truncates a file.
  const fh = await fs.open(target, "wx", 0o600);
  try {
    for await (const chunk of body) await fh.write(chunk);
    // Explicit chmod: the umask must not decide whether a hook is executable.
    await fh.chmod(entry.mode);
  } finally {
    await fh.close();
  }
}
