// Changeset bundles in the deploy_artifacts object store, content-addressed
// as "<name>@sha256:<hex>".
//
// An upload streams to a temporary file on the coordinator's disk while its
// SHA-256 is computed (never the whole bundle in memory), is checked as a
// bundle (gzip'd tar, safe entries, valid deploy.yaml), and only then is put
// into the object store. Identical content already stored is a no-op.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ObjectInfo, ObjectStore } from "@nats-io/obj";
import {
  HOOK_NAMES,
  PreconditionError,
  ValidationError,
  artifactObjectName,
  asArtifactName,
  asDigest,
  parseArtifactObjectName,
  type Logger,
} from "../../../shared/src/index.js";
import { inspectBundle } from "../../../shared/src/bundle/inspect.js";

export interface ArtifactInfo {
  name: string;
  digest: string;
  size: number;
  createdAt: string;
  hooks: string[];
}

export interface ArtifactStoreOptions {
  maxBytes: number;
  tmpDir: string;
  maxExpansionRatio: number;
  /** The same absolute caps the agents apply while unpacking (agent config maxUnpackedBytes, maxFiles): refused here, at upload, first. */
  maxUnpackedBytes: number;
  maxFiles: number;
}

/** How a refusal names the coordinator's caps (config.ts). */
const LIMIT_NAMES = { entries: "the coordinator's artifacts.maxFiles (DEPLOY_ARTIFACT_MAX_FILES)", bytes: "the coordinator's artifacts.maxUnpackedBytes (DEPLOY_ARTIFACT_MAX_UNPACKED_BYTES)" };

/** One message of an UploadArtifact stream, as grpc-js decodes it. */
export interface UploadPart {
  header?: { name?: string; digest?: string } | null;
  chunk?: Buffer | Uint8Array | null;
}

function toInfo(o: ObjectInfo): ArtifactInfo | undefined {
  const ref = parseArtifactObjectName(o.name);
  if (!ref || o.deleted) return undefined;
  const hooks = (o.metadata?.hooks ?? "").split(",").filter((h) => (HOOK_NAMES as readonly string[]).includes(h));
  return { name: ref.name, digest: ref.digest, size: o.size, createdAt: o.mtime, hooks };
}

export class ArtifactStore {
  constructor(
    private readonly os: ObjectStore,
    private readonly opts: ArtifactStoreOptions,
    private readonly log: Logger,
  ) {}

  async upload(parts: AsyncIterable<UploadPart>): Promise<ArtifactInfo> {
    const dir = await mkdtemp(join(this.opts.tmpDir, "deploy-upload-"));
    const file = join(dir, "bundle.tar.gz");
    try {
      let name: string | undefined;
      let expected: string | undefined;
      const hash = createHash("sha256");
      let size = 0;
      const fh = await open(file, "w");
      try {
        for await (const part of parts) {
          if (name === undefined) {
            if (!part.header) throw new ValidationError("header", "the first message must carry the header (name)");
            name = asArtifactName(part.header.name, "header.name");
            if (part.header.digest) expected = asDigest(part.header.digest, "header.digest");
            continue;
          }
          if (part.header) throw new ValidationError("header", "only the first message may carry a header");
          const chunk = part.chunk;
          if (!chunk || chunk.length === 0) continue;
          size += chunk.length;
          if (size > this.opts.maxBytes) throw new ValidationError("chunk", `artifact exceeds the limit of ${this.opts.maxBytes} bytes`);
          hash.update(chunk);
          await fh.write(chunk);
        }
      } finally {
        await fh.close();
      }
      if (name === undefined) throw new ValidationError("header", "is required");
      if (size === 0) throw new ValidationError("chunk", "the artifact is empty");
      const digest = `sha256:${hash.digest("hex")}`;
      if (expected && expected !== digest) throw new ValidationError("header.digest", `the content has digest ${digest}, not ${expected}`);

      const bundle = await inspectBundle(createReadStream(file), {
        maxExpansionRatio: this.opts.maxExpansionRatio,
        compressedSize: size,
        maxUnpackedBytes: this.opts.maxUnpackedBytes,
        maxEntries: this.opts.maxFiles,
        limitNames: LIMIT_NAMES,
      });
      const hooks = HOOK_NAMES.filter((h) => bundle.manifest.hooks[h] !== undefined);
      const objectName = artifactObjectName(name, digest);
      const existing = await this.os.info(objectName);
      if (existing && !existing.deleted) {
        this.log.info({ artifact: objectName }, "artifact already stored");
        return toInfo(existing)!;
      }
      const info = await this.os.put(
        { name: objectName, description: `changeset bundle ${name}`, metadata: { name, digest, hooks: hooks.join(",") } },
        Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
      );
      this.log.info({ artifact: objectName, size }, "artifact stored");
      return toInfo(info)!;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async get(name: string, digest: string): Promise<ArtifactInfo | undefined> {
    const o = await this.os.info(artifactObjectName(name, digest));
    return o ? toInfo(o) : undefined;
  }

  /** The artifact a changeset names; FAILED_PRECONDITION when it is not stored. */
  async require(name: string, digest: string, field: string): Promise<ArtifactInfo> {
    const a = await this.get(name, digest);
    if (!a) {
      const others = (await this.list(name)).map((x) => x.digest);
      throw new PreconditionError(
        `${field}: artifact ${name} with digest ${digest} is not stored${others.length ? ` (stored digests of ${name}: ${others.slice(0, 3).join(", ")})` : ""}`,
      );
    }
    return a;
  }

  async list(name?: string): Promise<ArtifactInfo[]> {
    const all = (await this.os.list()).map(toInfo).filter((a): a is ArtifactInfo => a !== undefined);
    return all.filter((a) => !name || a.name === name).sort((a, b) => a.name.localeCompare(b.name) || b.createdAt.localeCompare(a.createdAt));
  }
}
