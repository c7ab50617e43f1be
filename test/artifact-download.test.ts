// The agent's download of an artifact (artifactCache.ts fetchArtifact)
// against a real nats-server: batched direct gets of the object's chunks,
// each batch written while the next is asked for. The bytes arrive whole and
// in order, and a download that fails or is stopped leaves no file behind.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchArtifact } from "../services/agent/src/artifactCache.js";
import { artifactObjectName, artifactsBucket, type ArtifactRef } from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

let server: NatsServerHandle;
let nc: NatsConnection;
let dir: string;

/** Stores `data` as artifact `name` of app `web`; its ref. */
async function store(name: string, data: Uint8Array): Promise<ArtifactRef> {
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  const os = await new Objm(jetstream(nc)).create(artifactsBucket("web"));
  await os.putBlob({ name: artifactObjectName(name, digest) }, data);
  return { name, digest, size: data.length };
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  dir = await mkdtemp(join(tmpdir(), "artifact-download-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("fetchArtifact", () => {
  it("downloads an object of many batches whole and in order", async () => {
    // 3 MiB and 5 bytes: 25 chunks of 128 KiB, four batches of 8, the last chunk short.
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const ref = await store("many", data);
    const cache = join(dir, "many");
    const file = await fetchArtifact(nc, jetstream(nc), "web", cache, ref);
    expect(Buffer.compare(await readFile(file), data)).toBe(0);
    expect(await readdir(cache)).toEqual([file.slice(cache.length + 1)]);
  });

  it("refuses content whose digest is not the ref's, and keeps nothing of it", async () => {
    const data = randomBytes(1024 * 1024);
    const ref = await store("other", data);
    const cache = join(dir, "mismatch");
    const wrong = { ...ref, digest: `sha256:${"0".repeat(64)}` };
    // The object is found by the ref's name and digest: store it under the wrong one too.
    const os = await new Objm(jetstream(nc)).open(artifactsBucket("web"));
    await os.putBlob({ name: artifactObjectName(wrong.name, wrong.digest) }, data);
    await expect(fetchArtifact(nc, jetstream(nc), "web", cache, wrong)).rejects.toThrow(/digest mismatch: downloaded content has sha256:[0-9a-f]{64}/);
    expect(await readdir(cache)).toEqual([]);
  });

  it("stops at shutdown, leaving no partial file", async () => {
    const ref = await store("stopped", randomBytes(2 * 1024 * 1024));
    const cache = join(dir, "stopped");
    const ac = new AbortController();
    ac.abort();
    await expect(fetchArtifact(nc, jetstream(nc), "web", cache, ref, ac.signal)).rejects.toThrow(/download interrupted by shutdown/);
    expect(await readdir(cache)).toEqual([]);
  });

  it("says so when the object is not in the app's bucket", async () => {
    const ref = { name: "missing", digest: `sha256:${"1".repeat(64)}`, size: 10 };
    await expect(fetchArtifact(nc, jetstream(nc), "web", join(dir, "missing"), ref)).rejects.toThrow(/not found in the object store/);
  });
});
