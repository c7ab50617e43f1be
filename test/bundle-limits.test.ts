// Bundle caps (issue 18 item 5): an absolute cap on the unpacked size and
// on the number of entries, checked at upload by the coordinator and again
// by the agent while unpacking (which stops at the cap and removes the
// partial release), and no group- or world-writable bit on anything
// installed, since the privileged agent runs hooks from there.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ValidationError, artifactsBucket, artifactObjectName, connectNats } from "../services/shared/src/index.js";
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, inspectBundle, walkBundle } from "../services/shared/src/bundle/inspect.js";
import { unpackBundle } from "../services/agent/src/bundle/unpack.js";
import { applyBundle } from "../services/agent/src/bundle/applyBundle.js";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { makeBundle, script, writeBundle, type BundleEntry } from "./helpers/bundles.js";
import { Stack } from "./helpers/stack.js";

const MANIFEST = "version: 1\nhooks:\n  start: { run: hooks/start.sh }\nkeep_releases: 2\n";
const base = (mode = 0o755): BundleEntry[] => [
  { name: "deploy.yaml", content: MANIFEST },
  { name: "hooks/start.sh", content: script("echo started"), mode },
];
/** Incompressible, so the expansion ratio never decides: only the absolute caps do. */
const randomFiles = (n: number, size: number): BundleEntry[] => Array.from({ length: n }, (_, i) => ({ name: `data/${i}.bin`, content: randomBytes(size) }));
const sha = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const modeOf = async (p: string): Promise<number> => (await fs.stat(p)).mode & 0o7777;

describe("caps, checked by the shared walker", () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "bundle-limits-"));
  });
  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it("defaults: 2 GiB and 100,000 entries, also in the agent's configuration", () => {
    expect(DEFAULT_MAX_UNPACKED_BYTES).toBe(2 * 1024 ** 3);
    expect(DEFAULT_MAX_ENTRIES).toBe(100_000);
    const cfg = loadAgentConfig([], { environment: "prod", devMode: true });
    expect(cfg).toMatchObject({ maxUnpackedBytes: 2 * 1024 ** 3, maxFiles: 100_000 });
  });

  it("refuses more unpacked bytes than the cap, naming the limit; exactly the cap is accepted", async () => {
    const entries = [...base(), ...randomFiles(4, 10_000)];
    const buf = await makeBundle(entries);
    const total = (await inspectBundle(Readable.from([buf]), { maxExpansionRatio: 50 })).unpackedBytes;
    expect(total).toBe(40_000 + MANIFEST.length + script("echo started").length);
    await expect(inspectBundle(Readable.from([buf]), { maxExpansionRatio: 50, maxUnpackedBytes: total })).resolves.toMatchObject({ unpackedBytes: total });
    const err = (await inspectBundle(Readable.from([buf]), { maxExpansionRatio: 50, maxUnpackedBytes: total - 1 }).catch((e: unknown) => e)) as ValidationError;
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(new RegExp(`^bundle: unpacks to more than ${total - 1} bytes, the limit set by maxUnpackedBytes: data/3\\.bin \\(10000 bytes\\)`));
  });

  it("refuses more entries than the cap, naming the limit", async () => {
    const buf = await makeBundle([...base(), ...randomFiles(10, 10)]);
    const err = (await inspectBundle(Readable.from([buf]), { maxExpansionRatio: 50, maxEntries: 8, limitNames: { entries: "X.maxFiles", bytes: "X.maxBytes" } }).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe("bundle: has more than 8 entries (files, directories and links), the limit set by X.maxFiles");
  });

  it("unpack stops at the cap: the file over it is never created and the partial release is removed", async () => {
    // 8 MB that would come after the cap: refused at its header, before a byte of it is read.
    const file = await writeBundle(tmp, [...base(), ...randomFiles(2, 1000), { name: "data/huge.bin", content: randomBytes(8 * 1024 * 1024) }]);
    // What the unpacker is handed to write: never the entry over the cap.
    const handed: string[] = [];
    await expect(
      walkBundle(createReadStream(file), { maxExpansionRatio: 50, maxUnpackedBytes: 100_000 }, (entry) => {
        handed.push(entry.path);
        return Promise.resolve();
      }),
    ).rejects.toThrow(/data\/huge\.bin/);
    expect(handed).toEqual(["deploy.yaml", "hooks/start.sh", "data/0.bin", "data/1.bin"]);
    const dest = path.join(tmp, "releases", "v1.partial-x");
    await expect(unpackBundle(file, dest, { maxExpansionRatio: 50, maxUnpackedBytes: 100_000 })).rejects.toThrow(/unpacks to more than 100000 bytes, the limit set by maxUnpackedBytes: data\/huge\.bin/);
    await expect(fs.readdir(path.join(tmp, "releases"))).resolves.toEqual([]);
    await expect(unpackBundle(file, path.join(tmp, "releases", "v2"), { maxExpansionRatio: 50, maxEntries: 3 })).rejects.toThrow(/has more than 3 entries/);
    await expect(fs.readdir(path.join(tmp, "releases"))).resolves.toEqual([]);
  });

  it("applyBundle: an oversize bundle fails naming the agent's limit, nothing runs, no partial release is left", async () => {
    const root = path.join(tmp, "root");
    const file = await writeBundle(tmp, [...base(), ...randomFiles(30, 100)]);
    const lines: string[] = [];
    const r = await applyBundle({
      artifactFile: file, artifactSize: (await fs.stat(file)).size, root, app: "web", releaseName: "v1-abcdef12", deploymentId: "d-abcdef12", env: {}, maxExpansionRatio: 50,
      maxFiles: 20, deadlineMs: Date.now() + 60_000, maxLines: 100, maxLineLength: 1000, onLines: (l) => lines.push(...l),
    });
    expect(r.outcome).toBe("FAILED");
    expect(r.message).toBe("bundle refused: bundle: has more than 20 entries (files, directories and links), the limit set by the agent's maxFiles (DEPLOY_AGENT_MAX_FILES)");
    expect(lines).toEqual([]);
    await expect(fs.readdir(path.join(root, "web", "releases"))).resolves.toEqual([]);
  });

  it("group- and world-writable bits are dropped: 0777 → 0755, 0666 → 0644, also for directories, whatever the umask", async () => {
    const file = await writeBundle(tmp, [
      { name: "deploy.yaml", content: MANIFEST, mode: 0o666 },
      { name: "hooks/", type: "directory", mode: 0o777 },
      { name: "hooks/start.sh", content: script("true"), mode: 0o777 },
      { name: "implied/dir/file.txt", content: "x", mode: 0o664 },
      { name: "s", content: "x", mode: 0o6777 },
    ]);
    const dest = path.join(tmp, "rel");
    const old = process.umask(0);
    try {
      await unpackBundle(file, dest, { maxExpansionRatio: 50 });
    } finally {
      process.umask(old);
    }
    expect(await modeOf(path.join(dest, "hooks/start.sh"))).toBe(0o755);
    expect(await modeOf(path.join(dest, "hooks"))).toBe(0o755);
    expect(await modeOf(path.join(dest, "deploy.yaml"))).toBe(0o644);
    expect(await modeOf(path.join(dest, "implied/dir/file.txt"))).toBe(0o644);
    expect(await modeOf(path.join(dest, "implied"))).toBe(0o755);
    expect(await modeOf(path.join(dest, "implied/dir"))).toBe(0o755);
    expect(await modeOf(path.join(dest, "s"))).toBe(0o755);
    expect(await modeOf(dest)).toBe(0o755);
  });
});

describe("caps end to end: the coordinator at upload, the agent for a bundle sent around it", () => {
  let stack: Stack;
  let nc: NatsConnection;
  beforeAll(async () => {
    stack = await Stack.start({
      agents: ["c1"],
      coordinatorEnv: { DEPLOY_ARTIFACT_MAX_UNPACKED_BYTES: "100000", DEPLOY_ARTIFACT_MAX_FILES: "20", DEPLOY_ARTIFACT_MAX_BYTES: "200000" },
      agentEnv: { DEPLOY_AGENT_MAX_UNPACKED_BYTES: "100000", DEPLOY_AGENT_MAX_FILES: "20" },
    });
    nc = await connectNats({ url: stack.nats.url, name: "bundle-limits-test" });
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
  });

  const oversize: [string, () => BundleEntry[], RegExp, RegExp][] = [
    [
      "by size",
      () => [...base(), ...randomFiles(3, 40_000)],
      /^bundle: unpacks to more than 100000 bytes, the limit set by the coordinator's artifacts\.maxUnpackedBytes \(DEPLOY_ARTIFACT_MAX_UNPACKED_BYTES\)/,
      /^bundle refused: bundle: unpacks to more than 100000 bytes, the limit set by the agent's maxUnpackedBytes \(DEPLOY_AGENT_MAX_UNPACKED_BYTES\)/,
    ],
    [
      "by file count",
      () => [...base(), ...randomFiles(30, 100)],
      /^bundle: has more than 20 entries \(files, directories and links\), the limit set by the coordinator's artifacts\.maxFiles \(DEPLOY_ARTIFACT_MAX_FILES\)$/,
      /^bundle refused: bundle: has more than 20 entries \(files, directories and links\), the limit set by the agent's maxFiles \(DEPLOY_AGENT_MAX_FILES\)$/,
    ],
  ];

  it.each(oversize)("an oversize bundle (%s) is refused at upload, and by the agent when put in the store directly", async (what, entries, atUpload, atAgent) => {
    const client = stack.client();
    const data = await makeBundle(entries());
    const digest = sha(data);
    const err = (await client.upload("web", data).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code, what).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(atUpload);
    expect(((await client.listArtifacts("web")).artifacts ?? []).map((x) => x.digest)).not.toContain(digest);

    // Around the coordinator's check: straight into the app's bucket, as a
    // writer with store access (or an older coordinator) could.
    const store = await new Objm(nc).create(artifactsBucket("web"));
    await store.putBlob({ name: artifactObjectName("web", digest), metadata: { name: "web", digest, hooks: "start" } }, data);
    const before = await fs.readdir(path.join(stack.rootOf("c1"), "web", "releases")).catch(() => []);
    const d = await client.create({ requestId: `oversize-${what.replaceAll(" ", "-")}`, app: "web", environment: "prod", changeset: { version: "big", artifact: { name: "web", digest } } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.state).toBe("TARGET_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(atAgent);
    // Neither the release nor its partial directory is left behind.
    const after = await fs.readdir(path.join(stack.rootOf("c1"), "web", "releases"));
    expect(after.sort()).toEqual([...before].sort());
    expect(after.filter((n) => n.includes(".partial-") || n.startsWith("big-"))).toEqual([]);
  });

  it("an upload past artifacts.maxBytes is refused while it streams, naming the limit, and nothing is stored", async () => {
    const client = stack.client();
    const data = randomBytes(250_000); // more than the 200,000 bytes allowed, whatever it holds
    const err = (await client.upload("web", data).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^chunk: artifact exceeds the limit of 200000 bytes$/);
    expect(((await client.listArtifacts("web")).artifacts ?? []).map((x) => x.digest)).not.toContain(sha(data));
  });

  it("a bundle with 0777 files and directories installs them as 0755 (0666 as 0644)", async () => {
    const client = stack.client();
    const data = await makeBundle([
      { name: "deploy.yaml", content: MANIFEST, mode: 0o666 },
      { name: "hooks/", type: "directory", mode: 0o777 },
      { name: "hooks/start.sh", content: script("echo started"), mode: 0o777 },
      { name: "app/", type: "directory", mode: 0o777 },
      { name: "app/config.txt", content: "x", mode: 0o666 },
    ]);
    const a = await client.upload("web", data);
    const d = await client.create({ requestId: "modes", app: "web", environment: "prod", changeset: { version: "modes", artifact: { name: "web", digest: a.digest } } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state, JSON.stringify(done.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const rel = path.join(stack.rootOf("c1"), "web", "releases", `modes-${d.id!.slice(-8)}`);
    expect(await modeOf(path.join(rel, "hooks/start.sh"))).toBe(0o755);
    expect(await modeOf(path.join(rel, "hooks"))).toBe(0o755);
    expect(await modeOf(path.join(rel, "app"))).toBe(0o755);
    expect(await modeOf(path.join(rel, "app/config.txt"))).toBe(0o644);
    expect(await modeOf(path.join(rel, "deploy.yaml"))).toBe(0o644);
  });
});
