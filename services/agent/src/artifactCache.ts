// Artifacts on the agent's disk, cached by digest: downloaded by streaming
// to a temporary file while hashing, kept only if the digest matches.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { artifactObjectName, artifactsBucket, errorMessage, objStreamName, type ArtifactRef } from "../../shared/src/index.js";

/** Chunks (128 KiB each by default) requested at a time: bounds the download's memory. */
const CHUNKS_IN_FLIGHT = 8;
/** Cached artifacts kept besides the one in use; older ones are removed. */
const KEEP_CACHED = 5;

/**
 * Hashes a file through one reused buffer: a read stream allocates a new
 * 64 KiB buffer per read, and the GC lets tens of MB of them pile up before
 * it collects (+37 MB RSS hashing a 100 MB file; +1 MB this way).
 */
async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(256 * 1024);
  const fh = await open(file, "r");
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Reads an object's chunks a few at a time through a pull consumer, writing
 * each before asking for more. ObjectStore.get() pushes every chunk into an
 * unbounded stream as fast as the server sends them: installing a 100 MB
 * bundle took the agent from 55 MB to 192 MB RSS (bench), the whole object
 * buffered while the disk caught up.
 */
async function readChunks(js: JetStreamClient, bucket: string, nuid: string, size: number, onChunk: (data: Uint8Array) => Promise<void>): Promise<void> {
  if (size === 0) return;
  const consumer = await js.consumers.get(objStreamName(bucket), { filter_subjects: `$O.${bucket}.C.${nuid}` });
  let received = 0;
  let idle = 0;
  let unheard = 0;
  try {
    while (received < size) {
      let got = 0;
      try {
        const batch = await consumer.fetch({ max_messages: CHUNKS_IN_FLIGHT, expires: 5000 });
        for await (const m of batch) {
          got++;
          received += m.data.length;
          await onChunk(m.data);
          if (received >= size) break;
        }
      } catch (err) {
        // On a cluster the consumer just made may live on another server
        // whose interest in its pull subject has not reached ours yet: the
        // pull gets "no responders" (3.5 % of 200 fetches right after
        // creation on the local 3-node cluster). Ask again shortly.
        if (!/no responders/i.test(errorMessage(err)) || ++unheard > 5) throw err;
        await new Promise((r) => setTimeout(r, 100 * unheard));
        continue;
      }
      idle = got === 0 ? idle + 1 : 0;
      if (idle >= 6) throw new Error(`download stalled at ${received} of ${size} bytes`);
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  if (received !== size) throw new Error(`object has ${received} bytes, expected ${size}`);
}

/**
 * The artifact `ref` of `app`, from `app`'s bucket (deploy_artifacts_<app>:
 * the agent's permissions allow only its bound apps' buckets).
 */
export async function fetchArtifact(js: JetStreamClient, app: string, cacheDir: string, ref: ArtifactRef, signal?: AbortSignal): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, `${ref.digest.slice("sha256:".length)}.tar.gz`);
  const cached = await stat(file).catch(() => undefined);
  if (cached) {
    if ((await sha256File(file)) === ref.digest) return file;
    await rm(file, { force: true }); // corrupted on disk: fetch again
  }
  const bucket = artifactsBucket(app);
  const os = await new Objm(js).open(bucket).catch((err: unknown) => {
    throw new Error(`object store ${bucket} cannot be opened: ${errorMessage(err)}`, { cause: err });
  });
  const info = await os.info(artifactObjectName(ref.name, ref.digest));
  if (!info || info.deleted) throw new Error("not found in the object store");
  await removeStaleParts(cacheDir);
  const part = `${file}.part-${randomBytes(4).toString("hex")}`;
  const fh = await open(part, "w");
  const hash = createHash("sha256");
  try {
    await readChunks(js, bucket, info.nuid, info.size, async (data) => {
      if (signal?.aborted) throw new Error("download interrupted by shutdown");
      hash.update(data);
      await fh.write(data);
    });
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

/**
 * Downloads a crash cut short (SIGKILL, power loss) left behind: the agent
 * applies one command at a time, so any partial file is stale when a new
 * download begins. Otherwise it stayed until five newer artifacts pushed it
 * out (pruneCache), however large.
 */
async function removeStaleParts(cacheDir: string): Promise<void> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.includes(".tar.gz.part-")).map((n) => rm(join(cacheDir, n), { force: true })));
}

async function pruneCache(cacheDir: string, keep: string): Promise<void> {
  const names = await readdir(cacheDir);
  const files = await Promise.all(
    names.map(async (n) => ({ path: join(cacheDir, n), mtime: (await stat(join(cacheDir, n)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  const old = files.filter((f) => f.path !== keep).sort((a, b) => b.mtime - a.mtime).slice(KEEP_CACHED);
  await Promise.all(old.map((f) => rm(f.path, { force: true })));
}
