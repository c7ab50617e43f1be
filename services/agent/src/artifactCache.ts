// Artifacts on the agent's disk, cached by digest: downloaded by streaming
// to a temporary file while hashing, kept only if the digest matches.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ObjectStore } from "@nats-io/obj";
import { artifactObjectName, type ArtifactRef } from "../../shared/src/index.js";

/** Cached artifacts kept besides the one in use; older ones are removed. */
const KEEP_CACHED = 5;

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

export async function fetchArtifact(os: ObjectStore, cacheDir: string, ref: ArtifactRef, signal?: AbortSignal): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, `${ref.digest.slice("sha256:".length)}.tar.gz`);
  const cached = await stat(file).catch(() => undefined);
  if (cached) {
    if ((await sha256File(file)) === ref.digest) return file;
    await rm(file, { force: true }); // corrupted on disk: fetch again
  }
  const result = await os.get(artifactObjectName(ref.name, ref.digest));
  if (!result) throw new Error("not found in the object store");
  const part = `${file}.part-${randomBytes(4).toString("hex")}`;
  const fh = await open(part, "w");
  const hash = createHash("sha256");
  try {
    const reader = result.data.getReader();
    for (;;) {
      if (signal?.aborted) throw new Error("download interrupted by shutdown");
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      await fh.write(value);
    }
    const err = await result.error;
    if (err) throw err;
  } catch (err) {
    await fh.close();
    await rm(part, { force: true });
    throw err;
  }
  await fh.close();
  const digest = `sha256:${hash.digest("hex")}`;
  if (digest !== ref.digest) {
    await rm(part, { force: true });
    throw new Error(`digest mismatch: downloaded content has ${digest}`);
  }
  await rename(part, file);
  await pruneCache(cacheDir, file);
  return file;
}

async function pruneCache(cacheDir: string, keep: string): Promise<void> {
  const names = await readdir(cacheDir);
  const files = await Promise.all(
    names.map(async (n) => ({ path: join(cacheDir, n), mtime: (await stat(join(cacheDir, n)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  const old = files.filter((f) => f.path !== keep).sort((a, b) => b.mtime - a.mtime).slice(KEEP_CACHED);
  await Promise.all(old.map((f) => rm(f.path, { force: true })));
}
