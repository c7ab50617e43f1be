// Changeset bundles, one object store bucket per app (deploy_artifacts_<app>:
// an agent may read only its apps' buckets), content-addressed as
// "<name>@sha256:<hex>".
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
import type { JetStreamClient } from "@nats-io/jetstream";
import { Objm, setSha256Backend, StorageType, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import { HOOK_NAMES } from "../../../shared/src/bundle/manifest.js";
import { MAX_ARTIFACT_CONSUMERS } from "../infrastructure.js";

// The object store's own SHA-256 (its metadata's digest, checked by every
// reader, `nats object get` too) from node:crypto rather than nats.js's
// default, a pure-JS one: uploading a 100 MB bundle spent 1.6 s of the
// coordinator's CPU in it (2026-12-08, three uploads profiled: 4.7 s of
// 28.8 s). Process-wide; the digest is the same either way.
setSha256Backend("native");

// Objm.create copies options it does not know into the stream's config:
// the consumer limit every downloading agent counts against.
const ARTIFACT_STREAM_LIMITS = { max_consumers: MAX_ARTIFACT_CONSUMERS } as Record<string, unknown>;
import {
  ARTIFACTS_BUCKET_PREFIX,
  LEGACY_ARTIFACTS_BUCKET,
  PreconditionError,
  ValidationError,
  artifactObjectName,
  asArtifactName,
  artifactsBucket,
  asDigest,
  errorMessage,
  isToken,
  parseArtifactObjectName,
  TOKEN_RULE,
  type Logger,
} from "../../../shared/src/index.js";
import { inspectBundle } from "../../../shared/src/bundle/inspect.js";

export interface ArtifactInfo {
  /** The app whose bucket holds it (whose agents may read it); "" for the old shared bucket. */
  app: string;
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
  /** Replicas of a new app bucket (streams.replicas). */
  replicas: number;
  /** Newest artifacts of an app a prune keeps besides those in use (artifacts.keepPerApp; retention.ts); 0 or unset: none is deleted. */
  keepPerApp?: number;
}

/** How a refusal names the coordinator's caps (config.ts). */
const LIMIT_NAMES = { entries: "the coordinator's artifacts.maxFiles (DEPLOY_ARTIFACT_MAX_FILES)", bytes: "the coordinator's artifacts.maxUnpackedBytes (DEPLOY_ARTIFACT_MAX_UNPACKED_BYTES)" };

/** One message of an UploadArtifact stream, as grpc-js decodes it. */
export interface UploadPart {
  header?: { name?: string; digest?: string; app?: string } | null;
  chunk?: Buffer | Uint8Array | null;
}

function toInfo(app: string, o: ObjectInfo): ArtifactInfo | undefined {
  const ref = parseArtifactObjectName(o.name);
  if (!ref || o.deleted) return undefined;
  const hooks = (o.metadata?.hooks ?? "").split(",").filter((h) => (HOOK_NAMES as readonly string[]).includes(h));
  return { app, name: ref.name, digest: ref.digest, size: o.size, createdAt: o.mtime, hooks };
}

/**
 * The app an artifact belongs to: `app` when given, else its name (deployctl
 * uploads a bundle under its app's name), which must then be a valid app.
 */
export function artifactApp(app: string | undefined | null, name: string, field: string): string {
  if (app) {
    if (!isToken(app)) throw new ValidationError(field, `"${app.slice(0, 80)}" is not valid: use ${TOKEN_RULE}`);
    return app;
  }
  if (!isToken(name)) throw new ValidationError(field, `is required when the name ("${name.slice(0, 80)}") is not an app name (${TOKEN_RULE}): the app whose agents may read the artifact`);
  return name;
}

export class ArtifactStore {
  private readonly objm: Objm;
  /** Buckets opened (or created) so far, by name. */
  private readonly buckets = new Map<string, ObjectStore>();
  /**
   * The object names of an app's artifacts that a release or an active
   * deployment names (retention.ts artifactsInUse), which a prune keeps.
   * Set by the coordinator once its release book runs; unset: no prune.
   */
  inUse: ((app: string) => Promise<Set<string>>) | undefined;
  /** The prune running per app, and whether another upload asked for one since it began. */
  readonly #pruning = new Map<string, { again: boolean; done: Promise<void> }>();

  constructor(
    js: JetStreamClient,
    private readonly opts: ArtifactStoreOptions,
    private readonly log: Logger,
  ) {
    this.objm = new Objm(js);
  }

  /** An app's bucket (created when `create`), or the old shared one for app ""; undefined when it does not exist. */
  private async bucket(app: string, create: boolean): Promise<ObjectStore | undefined> {
    const name = app === "" ? LEGACY_ARTIFACTS_BUCKET : artifactsBucket(app);
    const known = this.buckets.get(name);
    if (known) return known;
    let os: ObjectStore;
    try {
      // Creating an existing bucket opens it; concurrent creates are one.
      os = create ? await this.objm.create(name, { storage: StorageType.File, replicas: this.opts.replicas, description: `nats-deploy bundles of app ${app}`, ...ARTIFACT_STREAM_LIMITS }) : await this.objm.open(name);
    } catch (err) {
      if (!create && /not found/i.test(errorMessage(err))) return undefined;
      throw err;
    }
    // Only a bucket that exists is remembered: one made later is seen then.
    this.buckets.set(name, os);
    return os;
  }

  async upload(parts: AsyncIterable<UploadPart>): Promise<ArtifactInfo> {
    const dir = await mkdtemp(join(this.opts.tmpDir, "deploy-upload-"));
    const file = join(dir, "bundle.tar.gz");
    try {
      let name: string | undefined;
      let app = "";
      let expected: string | undefined;
      const hash = createHash("sha256");
      let size = 0;
      const fh = await open(file, "w");
      try {
        for await (const part of parts) {
          if (name === undefined) {
            if (!part.header) throw new ValidationError("header", "the first message must carry the header (name)");
            name = asArtifactName(part.header.name, "header.name");
            app = artifactApp(part.header.app, name, "header.app");
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
      const os = (await this.bucket(app, true))!;
      const existing = await os.info(objectName);
      if (existing && !existing.deleted) {
        this.log.info({ app, artifact: objectName }, "artifact already stored");
        return toInfo(app, existing)!;
      }
      const info = await os.put(
        { name: objectName, description: `changeset bundle ${name}`, metadata: { name, digest, hooks: hooks.join(",") } },
        Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
      );
      this.log.info({ app, artifact: objectName, size }, "artifact stored");
      // Answered once the old ones are gone (a few round trips, never an
      // error): after an upload, the bucket holds what retention keeps.
      await this.prune(app);
      return toInfo(app, info)!;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The artifact in `app`'s bucket (app "": the old shared bucket). */
  async get(app: string, name: string, digest: string): Promise<ArtifactInfo | undefined> {
    const os = await this.bucket(app, false);
    const o = await os?.info(artifactObjectName(name, digest));
    return o ? toInfo(app, o) : undefined;
  }

  /**
   * The artifact a changeset of `app` names; FAILED_PRECONDITION when it is
   * not stored. One that is only in the old shared bucket (uploaded before
   * per-app buckets) is copied into the app's bucket first, once: its agents
   * can no longer read the shared one. The copy takes as long as the bytes
   * take to stream through the coordinator (bounded by artifacts.maxBytes).
   */
  async require(app: string, name: string, digest: string, field: string): Promise<ArtifactInfo> {
    const a = (await this.get(app, name, digest)) ?? (await this.copyFromLegacy(app, name, digest));
    if (!a) {
      const others = (await this.list(app, name)).map((x) => x.digest);
      throw new PreconditionError(
        `${field}: artifact ${name} with digest ${digest} is not stored for app ${app}${others.length ? ` (stored digests of ${name}: ${others.slice(0, 3).join(", ")})` : ""}`,
      );
    }
    return a;
  }

  private async copyFromLegacy(app: string, name: string, digest: string): Promise<ArtifactInfo | undefined> {
    const legacy = await this.bucket("", false);
    const objectName = artifactObjectName(name, digest);
    const old = await legacy?.info(objectName);
    if (!legacy || !old || old.deleted) return undefined;
    const source = await legacy.get(objectName);
    if (!source) return undefined;
    const os = (await this.bucket(app, true))!;
    // The stored digest is checked by the agent against the bytes it reads,
    // so a copy that went wrong is refused there, never installed.
    const info = await os.put({ name: objectName, description: old.description, metadata: old.metadata ?? {} }, source.data);
    this.log.info({ app, artifact: objectName, size: info.size, from: LEGACY_ARTIFACTS_BUCKET }, "artifact copied into its app's bucket");
    return toInfo(app, info);
  }

  /**
   * Deletes the artifacts of `app` that are neither among its newest
   * keepPerApp nor in use (retention.ts). One prune per app at a time; an
   * upload during one makes one more run after it. Never rejects: a prune
   * that fails (what is in use could not be read) deletes nothing more and
   * is logged; the next upload tries again.
   */
  prune(app: string): Promise<void> {
    const running = this.#pruning.get(app);
    if (running) {
      running.again = true;
      return running.done;
    }
    const slot = { again: false, done: Promise.resolve() };
    slot.done = (async () => {
      do {
        slot.again = false;
        await this.#pruneOnce(app).catch((err: unknown) => this.log.warn({ app, err: errorMessage(err) }, "pruning old artifacts failed; the next upload of the app tries again"));
      } while (slot.again);
      this.#pruning.delete(app);
    })();
    this.#pruning.set(app, slot);
    return slot.done;
  }

  async #pruneOnce(app: string): Promise<void> {
    const keep = this.opts.keepPerApp ?? 0;
    if (keep <= 0 || app === "" || !this.inUse) return;
    const os = await this.bucket(app, false);
    if (!os) return;
    const stored = (await os.list()).filter((o) => !o.deleted && parseArtifactObjectName(o.name) !== undefined).sort((a, b) => Date.parse(b.mtime) - Date.parse(a.mtime));
    if (stored.length <= keep) return;
    const inUse = await this.inUse(app);
    for (const o of stored.slice(keep)) {
      if (inUse.has(o.name)) continue;
      try {
        await os.delete(o.name);
      } catch (err) {
        // Deleted meanwhile by another coordinator's prune, most likely.
        this.log.debug({ app, artifact: o.name, err: errorMessage(err) }, "artifact not deleted");
        continue;
      }
      this.log.info({ app, artifact: o.name, size: o.size, uploadedAt: o.mtime }, "artifact deleted: older than the app's newest artifacts.keepPerApp, and no release or active deployment names it");
    }
  }

  /** Artifacts of one app (every app's, and the old shared bucket's, when none is given), optionally of one name. */
  async list(app?: string, name?: string): Promise<ArtifactInfo[]> {
    const apps: string[] = [];
    if (app !== undefined) apps.push(app);
    else {
      for await (const s of this.objm.list()) {
        if (s.bucket.startsWith(ARTIFACTS_BUCKET_PREFIX)) apps.push(s.bucket.slice(ARTIFACTS_BUCKET_PREFIX.length));
        else if (s.bucket === LEGACY_ARTIFACTS_BUCKET) apps.push("");
      }
    }
    const all: ArtifactInfo[] = [];
    for (const a of apps) {
      const os = await this.bucket(a, false);
      if (!os) continue;
      for (const o of await os.list()) {
        const info = toInfo(a, o);
        if (info && (!name || info.name === name)) all.push(info);
      }
    }
    return all.sort((a, b) => a.app.localeCompare(b.app) || a.name.localeCompare(b.name) || b.createdAt.localeCompare(a.createdAt));
  }
}
