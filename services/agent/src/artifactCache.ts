// Artifacts on the agent's disk, cached by digest: downloaded by streaming
// to a temporary file while hashing, kept only if the digest matches.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { artifactObjectName, artifactsBucket, errorMessage, objStreamName, type ArtifactRef, type Logger } from "../../shared/src/index.js";

/** Chunks (128 KiB each by default) requested at a time: with the batch being written, bounds the download's memory. */
const CHUNKS_IN_FLIGHT = 8;
/** Takes chunks in the object's order: a batch's, or one from a consumer. */
type OnChunks = (data: Uint8Array[]) => Promise<void>;
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

/** What an object's metadata message says (nats.js ObjectStore's ObjectInfo), as far as a download needs it. */
interface ObjectMeta {
  nuid: string;
  size: number;
  deleted?: boolean;
}

/**
 * An object's metadata: the last message on its metadata subject, by one
 * direct get (the subject in the request subject, which the agent's
 * permissions name). ObjectStore.open() and info() cost a stream info and
 * a message get first, JetStream API calls that a fleet starting a
 * download at once sends to the stream's leader all together. Undefined
 * when there is no such object.
 */
async function readObjectInfo(nc: NatsConnection, bucket: string, name: string): Promise<ObjectMeta | undefined> {
  // nats.js names it by the base64url encoding of the name, padded.
  const encoded = Buffer.from(name).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
  const subject = `$JS.API.DIRECT.GET.${objStreamName(bucket)}.$O.${bucket}.M.${encoded}`;
  let m;
  // Any replica may answer, and one a little behind the leader may not have
  // an object just uploaded yet: "none" (or no answer, a leader being
  // elected) is asked again for up to 1.5 s before it is believed.
  for (let attempt = 1; ; attempt++) {
    try {
      m = await nc.request(subject, undefined, { timeout: 5000 });
      if ((m.headers?.code ?? 0) !== 404 || attempt >= 6) break;
    } catch (err) {
      if (!/no responders/i.test(errorMessage(err)) || attempt >= 6) throw new Error(`object store ${bucket} cannot be read: ${errorMessage(err)}`, { cause: err });
    }
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
  const code = m.headers?.code ?? 0;
  if (code === 404) return undefined;
  if (code !== 0) throw new Error(`object store ${bucket} cannot be read: ${code} ${m.headers?.description ?? ""}`.trim());
  const meta = m.json<Partial<ObjectMeta>>();
  if (typeof meta.nuid !== "string" || typeof meta.size !== "number") throw new Error(`object store ${bucket}: unreadable metadata for ${name}`);
  return { nuid: meta.nuid, size: meta.size, ...(meta.deleted ? { deleted: true } : {}) };
}

/**
 * Reads an object's chunks a few at a time with batched direct gets
 * (nats-server 2.11+), writing each batch while the next is asked for: no
 * consumer is made, so a fleet downloading a bundle at once leaves no state
 * on the server and needs no consumer permission on the artifact streams
 * (gen-credentials.ts). ObjectStore.get() pushes every chunk into an
 * unbounded stream as fast as the server sends them: installing a 100 MB
 * bundle took the agent from 55 MB to 192 MB RSS (bench), the whole object
 * buffered while the disk caught up; here at most two batches of
 * CHUNKS_IN_FLIGHT are (one being written while the next arrives).
 *
 * Any replica may answer a direct get, and one a little behind its leader
 * can have fewer chunks than the metadata read before said: a batch that
 * brings nothing new is asked again, shortly, from where it stopped.
 */
async function readChunksDirect(nc: NatsConnection, bucket: string, nuid: string, size: number, onChunks: OnChunks): Promise<void> {
  const subject = `$JS.API.DIRECT.GET.${objStreamName(bucket)}`;
  const chunks = `$O.${bucket}.C.${nuid}`;
  let received = 0;
  let seq = 0;
  let idle = 0;
  // The batch before this one, still being written while this one is asked
  // for: the network and the disk overlap, at most two batches in memory.
  // Writes keep their order: each starts once the one before has ended.
  let writing: Promise<void> | undefined;
  const written = async (): Promise<void> => {
    const w = writing;
    writing = undefined;
    await w;
  };
  try {
    while (received < size) {
      const body = JSON.stringify({ seq: seq + 1, next_by_subj: chunks, batch: CHUNKS_IN_FLIGHT });
      // A batch's chunks are written together, in one write: a write per
      // 128 KiB chunk was 4 % of an agent host's time in the bench's bundle
      // rollout. They are all in memory by then anyway.
      const batch: Uint8Array[] = [];
      try {
        // Each batch ends with an empty status message (204 end of batch, 404
        // nothing more): "sentinel". maxWait bounds a batch that never ends.
        const replies = await nc.requestMany(subject, body, { strategy: "sentinel", maxWait: 5000 });
        for await (const m of replies) {
          if (m.data.length === 0) {
            const code = m.headers?.code ?? 0;
            if (code !== 204 && code !== 404) throw new Error(`direct get of ${chunks} answered ${code} ${m.headers?.description ?? ""}`.trim());
            break;
          }
          const at = Number(m.headers?.get("Nats-Sequence"));
          if (!(at > seq)) continue;
          seq = at;
          received += m.data.length;
          if (received > size) break;
          batch.push(m.data);
        }
      } catch (err) {
        // No server answering the stream's direct gets for a moment (a
        // cluster electing its leader): asked again, as an empty batch is.
        if (!/no responders/i.test(errorMessage(err))) throw err;
      }
      await written();
      const got = batch.length;
      if (got > 0) {
        writing = onChunks(batch);
        writing.catch(() => undefined); // awaited before the next write, or below
      }
      idle = got === 0 ? idle + 1 : 0;
      if (idle >= 6) throw new Error(`download stalled at ${received} of ${size} bytes`);
      if (idle > 0) await new Promise((r) => setTimeout(r, 100 * idle));
    }
    await written();
  } finally {
    // Never return (or throw) with a write still running: the caller closes
    // the file and removes it next.
    await writing?.catch(() => undefined);
  }
  if (received !== size) throw new Error(`object has more than its ${size} bytes`);
}

/**
 * The same through an ephemeral pull consumer: for an agent whose NATS
 * credentials predate the direct reads (they allow consumers on its apps'
 * artifact streams, not `$JS.API.DIRECT.GET.<stream>`).
 */
async function readChunksConsumer(js: JetStreamClient, bucket: string, nuid: string, size: number, onChunks: OnChunks): Promise<void> {
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
          await onChunks([m.data]);
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

/** Set once the server refused a direct read of chunks (credentials from before them): this process reads through consumers from then on. */
let directRefused = false;

async function readChunks(nc: NatsConnection, js: JetStreamClient, bucket: string, nuid: string, size: number, onChunks: OnChunks, log?: Logger): Promise<void> {
  if (!directRefused) {
    let started = false;
    try {
      return await readChunksDirect(nc, bucket, nuid, size, (data) => {
        started = true;
        return onChunks(data);
      });
    } catch (err) {
      // Refused before any chunk arrived: nothing written yet, read it the old way.
      if (started || !/permissions? violation/i.test(errorMessage(err))) throw err;
      directRefused = true;
      log?.warn(
        { bucket, err: errorMessage(err) },
        "NATS refuses this agent's direct reads of artifact chunks (credentials from before them): downloading through consumers instead; re-run gen-credentials for this agent",
      );
    }
  }
  await readChunksConsumer(js, bucket, nuid, size, onChunks);
}

/**
 * The artifact `ref` of `app`, from `app`'s bucket (deploy_artifacts_<app>:
 * the agent's permissions allow only its bound apps' buckets).
 */
export async function fetchArtifact(
  nc: NatsConnection,
  js: JetStreamClient,
  app: string,
  cacheDir: string,
  ref: ArtifactRef,
  signal?: AbortSignal,
  log?: Logger,
): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, `${ref.digest.slice("sha256:".length)}.tar.gz`);
  const cached = await stat(file).catch(() => undefined);
  if (cached) {
    if ((await sha256File(file)) === ref.digest) return file;
    await rm(file, { force: true }); // corrupted on disk: fetch again
  }
  const bucket = artifactsBucket(app);
  const info = await readObjectInfo(nc, bucket, artifactObjectName(ref.name, ref.digest));
  if (!info || info.deleted) throw new Error("not found in the object store");
  await removeStaleParts(cacheDir);
  const part = `${file}.part-${randomBytes(4).toString("hex")}`;
  const fh = await open(part, "w");
  const hash = createHash("sha256");
  try {
    await readChunks(
      nc,
      js,
      bucket,
      info.nuid,
      info.size,
      async (data) => {
        if (signal?.aborted) throw new Error("download interrupted by shutdown");
        let bytes = 0;
        for (const d of data) {
          hash.update(d);
          bytes += d.length;
        }
        // libuv writes every buffer (it loops over a short write); checked all the same.
        const { bytesWritten } = await fh.writev(data);
        if (bytesWritten !== bytes) throw new Error(`short write to ${part}: ${bytesWritten} of ${bytes} bytes`);
      },
      log,
    );
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
