// A bundle from disk: a directory packed into a gzip'd tar, or a .tar.gz
// checked as it is. Either way deploy.yaml must be at the root; the result is
// a file (so an upload can be retried from the start) and its SHA-256.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import { lstat, mkdtemp, readdir, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix, relative, sep } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import * as tar from "tar-stream";
import { UsageError } from "./errors.js";

export const MANIFEST = "deploy.yaml";

export interface Bundle {
  file: string;
  digest: string;
  size: number;
  /** Entries packed (directories included); undefined for a given tarball. */
  entries?: number;
  /** Removes the temporary file of a packed directory. */
  cleanup: () => Promise<void>;
}

/** A directory or a .tar.gz / .tgz file; anything else is a usage error. */
export async function loadBundle(path: string): Promise<Bundle> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new UsageError(`${path}: no such file or directory`);
  if (st.isDirectory()) return packDirectory(path);
  if (st.isFile() && /\.(tar\.gz|tgz)$/.test(path)) return checkTarball(path);
  throw new UsageError(`${path}: give a directory or a .tar.gz bundle`);
}

/** Counts bytes and hashes them on the way through. */
class Digester extends Transform {
  readonly hash = createHash("sha256");
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/** Paths under `dir`, relative, in a stable (sorted) order, directories before their contents. */
async function walk(dir: string, sub = ""): Promise<string[]> {
  const names = (await readdir(join(dir, sub))).sort();
  const out: string[] = [];
  for (const name of names) {
    const rel = sub ? `${sub}/${name}` : name;
    out.push(rel);
    if ((await lstat(join(dir, rel))).isDirectory()) out.push(...(await walk(dir, rel)));
  }
  return out;
}

/**
 * Packs `dir` into a temporary .tar.gz. Entries are sorted and owned by
 * uid/gid 0 so the same tree packs to the same bytes (and an identical
 * upload is a no-op); mtimes come from the files, or SOURCE_DATE_EPOCH.
 */
export async function packDirectory(dir: string): Promise<Bundle> {
  const manifest = await lstat(join(dir, MANIFEST)).catch(() => undefined);
  if (!manifest?.isFile()) throw new UsageError(`${dir}: no ${MANIFEST} at the root of the bundle`);

  const tmp = await mkdtemp(join(tmpdir(), "deployctl-"));
  const file = join(tmp, "bundle.tar.gz");
  // Also on process.exit(), which skips `finally` blocks: deployctl exits
  // there when its reader goes away (output.ts) or a close hangs (main.ts).
  const removeOnExit = (): void => rmSync(tmp, { recursive: true, force: true });
  process.once("exit", removeOnExit);
  const cleanup = async (): Promise<void> => {
    process.removeListener("exit", removeOnExit);
    await rm(tmp, { recursive: true, force: true });
  };
  const epoch = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : undefined;
  try {
    const pack = tar.pack();
    const digester = new Digester();
    const written = pipeline(pack, createGzip(), digester, createWriteStream(file));
    const paths = await walk(dir);
    for (const rel of paths) {
      const abs = join(dir, rel);
      const name = rel.split(sep).join(posix.sep);
      const st = await lstat(abs);
      const base = { name, mode: st.mode & 0o7777, mtime: epoch ?? st.mtime, uid: 0, gid: 0, uname: "", gname: "" };
      if (st.isDirectory()) {
        pack.entry({ ...base, type: "directory" });
      } else if (st.isSymbolicLink()) {
        pack.entry({ ...base, type: "symlink", linkname: await readlink(abs) });
      } else if (st.isFile()) {
        const entry = pack.entry({ ...base, type: "file", size: st.size });
        await pipeline(createReadStream(abs), entry);
      } else {
        throw new UsageError(`${relative(".", abs)}: not a file, directory or symlink; a bundle cannot hold it`);
      }
    }
    pack.finalize();
    await written;
    return { file, digest: `sha256:${digester.hash.digest("hex")}`, size: digester.size, entries: paths.length, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Checks a given tarball: gzip'd tar with deploy.yaml at its root; hashes it. */
export async function checkTarball(file: string): Promise<Bundle> {
  const extract = tar.extract();
  let found = false;
  extract.on("entry", (header, stream, next) => {
    const name = header.name.replace(/^(\.\/)+/, "");
    if (name === MANIFEST && header.type === "file") found = true;
    stream.on("end", next);
    stream.resume();
  });
  const digester = new Digester();
  try {
    await pipeline(createReadStream(file), digester, createGunzip(), extract);
  } catch (err) {
    throw new UsageError(`${file}: not a gzip'd tar (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  if (!found) throw new UsageError(`${file}: no ${MANIFEST} at the root of the bundle`);
  return { file, digest: `sha256:${digester.hash.digest("hex")}`, size: digester.size, cleanup: () => Promise.resolve() };
}
