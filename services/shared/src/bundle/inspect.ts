// Checks a changeset bundle (a gzip'd tar with deploy.yaml at its root) while
// streaming through it once, holding no file contents in memory except
// deploy.yaml. The coordinator runs it at upload, so a broken bundle never
// reaches a VM; the agent runs the same checks again while unpacking
// (walkBundle below is shared by both), so what one side accepts the other
// accepts too.
import path from "node:path";
import zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { ValidationError } from "../errors.js";
import { crlfShebang } from "../shebang.js";
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES } from "./limits.js";
import { MANIFEST_FILE, parseManifest, type Manifest } from "./manifest.js";

export interface BundleInfo {
  manifest: Manifest;
  /** Regular files, normalised paths ("hooks/start.sh"), in archive order. */
  files: string[];
  /** Uncompressed size of the tar stream (headers included): what maxExpansionRatio limits. */
  totalBytes: number;
  /** Sum of the regular files' sizes: what the bundle takes on disk, and what maxUnpackedBytes limits. */
  unpackedBytes: number;
}

export interface InspectOptions {
  /** Refuse a bundle whose uncompressed tar is larger than this many times its compressed size. */
  maxExpansionRatio: number;
  /**
   * Gunzip's output chunk; default zlib's 16 KiB. The streaming expansion
   * check runs per chunk, so a larger one lets a small, highly compressed
   * bundle reach that check before an entry's own (a 70 KB deploy.yaml of
   * one repeated character is then refused as expanding too much, not as
   * too large): the upload's inspection, whose errors the user reads, keeps
   * the default; the agent's unpack, which only sees inspected bundles,
   * asks for 256 KiB (unpack.ts READ_BYTES: a fifth of the CPU).
   */
  gunzipChunkBytes?: number;
  /**
   * Compressed size in bytes. When given, the ratio is enforced while
   * streaming (a bomb is stopped early); when not, the compressed bytes are
   * counted as they are read and the ratio is checked at the end.
   */
  compressedSize?: number;
  /**
   * Most entries (files, directories and links: each is an inode on the
   * VM). Default DEFAULT_MAX_ENTRIES.
   */
  maxEntries?: number;
  /**
   * Most bytes of regular files in all, checked against each entry's
   * declared size before any of its bytes are read (an unpacker stops at the
   * cap, not after it). Default DEFAULT_MAX_UNPACKED_BYTES. An absolute cap:
   * the expansion ratio alone lets a 1 GB upload unpack to 50 GB.
   */
  maxUnpackedBytes?: number;
  /** How refusals name the two caps (the configuration of the side checking): default "maxFiles", "maxUnpackedBytes". */
  limitNames?: LimitNames;
}

export interface LimitNames {
  /** Names maxEntries. */
  entries: string;
  /** Names maxUnpackedBytes. */
  bytes: string;
}

export { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_UNPACKED_BYTES } from "./limits.js";
const DEFAULT_LIMIT_NAMES: LimitNames = { entries: "maxFiles", bytes: "maxUnpackedBytes" };
/** deploy.yaml is a few lines; 64 KB leaves room for comments without letting a bundle make us buffer much. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** One archive entry that passed checkEntry, as the unpacker needs it. */
export type CheckedEntry =
  | { kind: "file"; path: string; mode: number; size: number }
  | { kind: "directory"; path: string; mode: number }
  | { kind: "symlink"; path: string; target: string };

/**
 * The header fields checkEntry reads. Looser than tar-stream's own Header
 * type on purpose: for an unknown type flag tar-stream gives `type: null`,
 * and linkname is null for non-links.
 */
export interface EntryHeader {
  name: string;
  type?: string | null;
  mode?: number | null;
  size?: number | null;
  linkname?: string | null;
}

/** What checkEntry remembers across entries of one archive. */
export class BundleState {
  entries = 0;
  /** Declared sizes of the regular files so far. */
  unpackedBytes = 0;
  /** Regular file path → mode bits. */
  readonly files = new Map<string, number>();
  /** Explicit and implied directories ("" is the root). */
  readonly dirs = new Set<string>([""]);
  /** Symlink path → target as written in the archive. */
  readonly symlinks = new Map<string, string>();
  /** Executable regular file path → its first bytes (up to HEAD_BYTES): a hook's #! line. */
  readonly heads = new Map<string, Buffer>();
  constructor(
    readonly maxEntries: number,
    readonly maxUnpackedBytes: number = DEFAULT_MAX_UNPACKED_BYTES,
    readonly limitNames: LimitNames = DEFAULT_LIMIT_NAMES,
  ) {}
}

const entryField = (p: string): string => `bundle: ${p}`;

/** How much of each executable file walkBundle keeps for finishBundle's look at a hook's #! line. */
const HEAD_BYTES = 256;

/**
 * The per-entry checks, shared by inspectBundle and the agent's unpacker.
 * Throws ValidationError naming the entry; on success records the entry in
 * `state` and returns what to create. Returns undefined for the root
 * directory entry ("./"), which needs nothing.
 */
export function checkEntry(header: EntryHeader, state: BundleState): CheckedEntry | undefined {
  state.entries++;
  if (state.entries > state.maxEntries) {
    throw new ValidationError("bundle", `has more than ${state.maxEntries} entries (files, directories and links), the limit set by ${state.limitNames.entries}`);
  }
  const raw = header.name;
  if (raw.includes("\0")) throw new ValidationError("bundle", "has an entry name containing a NUL byte");
  if (raw.startsWith("/")) throw new ValidationError(entryField(raw), "absolute paths are not allowed");
  const parts = raw.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new ValidationError(entryField(raw), `".." path components are not allowed`);
  const p = parts.join("/");
  // tar-stream gives null for a type flag it does not know (sparse files,
  // vendor extensions): refused below, never mistaken for a regular file.
  const type = header.type === undefined ? "file" : (header.type ?? "unknown");

  if (type === "directory") {
    if (p === "") return undefined;
    checkParents(parts, raw, state);
    if (state.files.has(p) || state.symlinks.has(p)) throw new ValidationError(entryField(raw), "appears twice in the archive");
    // A repeated directory entry is harmless (some tools write them).
    state.dirs.add(p);
    return { kind: "directory", path: p, mode: (header.mode ?? 0o755) & SAFE_MODE_BITS };
  }
  if (p === "") throw new ValidationError(entryField(raw), `a ${type} entry needs a name`);

  switch (type) {
    case "file":
    case "contiguous-file":
    case "symlink":
      break;
    case "link":
      throw new ValidationError(entryField(raw), "hard links are not allowed");
    case "character-device":
    case "block-device":
      throw new ValidationError(entryField(raw), `device files are not allowed (${type})`);
    case "fifo":
      throw new ValidationError(entryField(raw), "fifos are not allowed");
    default:
      throw new ValidationError(entryField(raw), `unsupported entry type ${type}`);
  }
  checkParents(parts, raw, state);
  if (state.files.has(p) || state.symlinks.has(p) || state.dirs.has(p)) throw new ValidationError(entryField(raw), "appears twice in the archive");

  if (type === "symlink") {
    const target = header.linkname ?? "";
    if (target === "" || target.includes("\0")) throw new ValidationError(entryField(raw), "symlink has an empty target");
    if (target.startsWith("/")) throw new ValidationError(entryField(raw), `symlink target "${target}" is absolute`);
    // Lexical check here for an early, precise message; finishBundle also
    // resolves chains through other links, which a lexical check cannot see.
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(p), target));
    if (resolved === ".." || resolved.startsWith("../")) {
      throw new ValidationError(entryField(raw), `symlink target "${target}" points outside the bundle`);
    }
    state.symlinks.set(p, target);
    return { kind: "symlink", path: p, target };
  }
  if (p === MANIFEST_FILE && (header.size ?? 0) > MAX_MANIFEST_BYTES) {
    throw new ValidationError(entryField(raw), `is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  const size = header.size ?? 0;
  if (state.unpackedBytes + size > state.maxUnpackedBytes) {
    throw new ValidationError(
      "bundle",
      `unpacks to more than ${state.maxUnpackedBytes} bytes, the limit set by ${state.limitNames.bytes}: ${p} (${size} bytes) would take it to ${state.unpackedBytes + size}`,
    );
  }
  state.unpackedBytes += size;
  const mode = (header.mode ?? 0o644) & SAFE_MODE_BITS;
  state.files.set(p, mode);
  return { kind: "file", path: p, mode, size };
}

/**
 * Permission bits a release may have: no setuid/setgid/sticky (a bundle must
 * not install privilege) and no group or world write (0o022): the privileged
 * agent later runs hooks from the release, so nobody but its owner may
 * change them. 0o777 becomes 0o755, 0o666 becomes 0o644.
 */
const SAFE_MODE_BITS = 0o755;

/** Every parent must be a directory, never a file or a symlink: nothing is written through a link. */
function checkParents(parts: string[], raw: string, state: BundleState): void {
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join("/");
    if (state.symlinks.has(parent)) throw new ValidationError(entryField(raw), `is inside "${parent}", which is a symlink`);
    if (state.files.has(parent)) throw new ValidationError(entryField(raw), `is inside "${parent}", which is a file`);
    state.dirs.add(parent);
  }
}

/** Where `target`, written in a link at `linkPath`, ends up once every link on the way is followed; undefined if outside. */
function resolveInBundle(linkPath: string, symlinks: ReadonlyMap<string, string>): string | undefined {
  // Follows links the way the kernel does (a link's ".." applies to where the
  // link points, not to where it sits), with a hop limit like its ELOOP (40).
  let hops = 0;
  const walk = (stack: string[], target: string): string[] | undefined => {
    for (const c of target.split("/")) {
      if (c === "" || c === ".") continue;
      if (c === "..") {
        if (stack.length === 0) return undefined;
        stack.pop();
        continue;
      }
      stack.push(c);
      const next = symlinks.get(stack.join("/"));
      if (next !== undefined) {
        if (++hops > 40) return undefined;
        stack.pop();
        const r = walk(stack, next);
        if (r === undefined) return undefined;
        stack = r;
      }
    }
    return stack;
  };
  const parts = linkPath.split("/");
  const r = walk(parts.slice(0, -1), symlinks.get(linkPath)!);
  return r === undefined ? undefined : r.join("/");
}

/** Checks that need the whole archive: link chains, deploy.yaml, the manifest and its scripts. */
export function finishBundle(state: BundleState, manifestText: string | undefined, totalBytes: number): BundleInfo {
  for (const link of state.symlinks.keys()) {
    if (resolveInBundle(link, state.symlinks) === undefined) {
      throw new ValidationError(entryField(link), `symlink target "${state.symlinks.get(link)}" points outside the bundle (through other links) or loops`);
    }
  }
  if (manifestText === undefined) {
    const what = state.symlinks.has(MANIFEST_FILE) || state.dirs.has(MANIFEST_FILE) ? "must be a regular file" : "is missing from the bundle root";
    throw new ValidationError(MANIFEST_FILE, what);
  }
  const manifest = parseManifest(manifestText, new Set(state.files.keys()));
  for (const [name, hook] of Object.entries(manifest.hooks)) {
    const mode = state.files.get(hook.run) ?? 0;
    // Refused here rather than worked around with "sh script" on the VM: the
    // shebang decides the interpreter, and the upload is the place to learn it.
    if ((mode & 0o100) === 0) {
      throw new ValidationError(`hooks.${name}.run`, `script "${hook.run}" is not executable (mode ${mode.toString(8).padStart(4, "0")}): set its execute bit before packing`);
    }
    // A script saved with Windows line endings names "/bin/bash\r" as its
    // interpreter: on the VM it fails with "No such file or directory", as
    // if the script itself were missing. Said here, where it can be fixed.
    const line = crlfShebang(state.heads.get(hook.run)?.toString("utf8") ?? "");
    if (line !== undefined) {
      throw new ValidationError(`hooks.${name}.run`, `script "${hook.run}" has Windows line endings (CRLF): its first line "${line}\\r" names an interpreter that does not exist on the VM; convert it (dos2unix, or git's core.autocrlf=input) before packing`);
    }
  }
  return { manifest, files: [...state.files.keys()], totalBytes, unpackedBytes: state.unpackedBytes };
}

/** Called for each checked entry with its contents; must consume `body` or leave it (the walker drains the rest). */
export type EntryHandler = (entry: CheckedEntry, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) => Promise<void>;

/**
 * Streams source → gunzip → tar, runs checkEntry on every entry, passes
 * entries to `onEntry`, and finishes with finishBundle. Memory stays bounded:
 * the tar parser gets bytes only as fast as entries are consumed.
 */
export async function walkBundle(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: InspectOptions, onEntry?: EntryHandler): Promise<BundleInfo> {
  if (!(Number.isFinite(opts.maxExpansionRatio) && opts.maxExpansionRatio > 0)) throw new TypeError("maxExpansionRatio must be a positive number");
  for (const [key, v] of [["maxEntries", opts.maxEntries], ["maxUnpackedBytes", opts.maxUnpackedBytes]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new TypeError(`${key} must be a non-negative integer`);
  }
  const state = new BundleState(opts.maxEntries ?? DEFAULT_MAX_ENTRIES, opts.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES, opts.limitNames ?? DEFAULT_LIMIT_NAMES);
  const streamingLimit = opts.compressedSize === undefined ? Infinity : opts.maxExpansionRatio * Math.max(opts.compressedSize, 1);
  const tooBig = (): ValidationError =>
    new ValidationError("bundle", `expands to more than ${opts.maxExpansionRatio} times its compressed size (${compressedBytes} bytes)`);

  let compressedBytes = opts.compressedSize ?? 0;
  let totalBytes = 0;
  let failure: Error | undefined;
  const gunzip = zlib.createGunzip(opts.gunzipChunkBytes === undefined ? {} : { chunkSize: opts.gunzipChunkBytes });
  const extract = tar.extract();
  let wake: (() => void) | undefined;
  const fail = (err: unknown): void => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    wake?.();
    gunzip.destroy();
    extract.destroy(failure);
  };

  async function* counted(src: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
    for await (const chunk of src) {
      // A view, not a copy (Buffer.from(Uint8Array) copies: a 100 MB bundle
      // made 100 MB more garbage for the GC to catch up with).
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from((chunk as Uint8Array).buffer, (chunk as Uint8Array).byteOffset, (chunk as Uint8Array).byteLength);
      if (opts.compressedSize === undefined) compressedBytes += buf.length;
      yield buf;
    }
  }

  const feeding = (async () => {
    const gunzipping = pipeline(counted(source as AsyncIterable<unknown>), gunzip);
    gunzipping.catch(() => undefined); // observed below, or superseded by the error that stopped us
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        totalBytes += chunk.length;
        if (totalBytes > streamingLimit) throw tooBig();
        if (failure !== undefined) return;
        if (!extract.write(chunk)) {
          // Resolved by drain, or by fail(): a destroyed extract may never emit either event again.
          await new Promise<void>((resolve) => {
            wake = resolve;
            extract.once("drain", () => resolve());
          });
          wake = undefined;
          if (failure !== undefined) return;
        }
      }
      await gunzipping;
      extract.end(undefined); // streamx's typings insist on an argument
    } catch (err) {
      // zlib errors arrive through the readable side only (the pipeline has
      // resolved once gunzip took all input); a source error arrives here too.
      fail(classifyGunzipError(err));
    }
  })();

  let manifestText: string | undefined;
  const consuming = (async () => {
    try {
      for await (const entry of extract) {
        const checked = checkEntry(entry.header, state);
        if (checked?.kind === "file" && totalBytes + checked.size > streamingLimit) throw tooBig();
        // One iterator per entry: a streamx stream iterated a second time
        // after it ended never settles.
        const it = entry[Symbol.asyncIterator]();
        let ended = false;
        const next = async (): Promise<IteratorResult<Buffer>> => {
          if (ended) return { done: true, value: undefined };
          const r = (await it.next()) as IteratorResult<Buffer>;
          if (r.done) ended = true;
          return r;
        };
        let read = next;
        if (checked?.kind === "file" && (checked.mode & 0o100) !== 0) {
          // Its first bytes kept as they pass (finishBundle reads a hook's #! line).
          const path = checked.path;
          read = async () => {
            const r = await next();
            const had = state.heads.get(path)?.length ?? 0;
            if (!r.done && had < HEAD_BYTES) state.heads.set(path, Buffer.concat([state.heads.get(path) ?? Buffer.alloc(0), r.value.subarray(0, HEAD_BYTES - had)]));
            return r;
          };
        }
        let body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: read }) };
        if (checked?.kind === "file" && checked.path === MANIFEST_FILE) {
          const chunks: Buffer[] = [];
          for (let r = await next(); !r.done; r = await next()) chunks.push(r.value);
          const buf = Buffer.concat(chunks);
          manifestText = buf.toString("utf8");
          body = [buf];
        }
        if (checked && onEntry) await onEntry(checked, body);
        while (!(await read()).done) {
          // drain what the handler left
        }
      }
    } catch (err) {
      fail(err instanceof ValidationError || failure !== undefined ? err : classifyTarError(err));
    }
  })();

  await Promise.all([feeding, consuming]);
  if (failure !== undefined) throw failure;
  if (opts.compressedSize === undefined && totalBytes > opts.maxExpansionRatio * Math.max(compressedBytes, 1)) throw tooBig();
  return finishBundle(state, manifestText, totalBytes);
}

function classifyGunzipError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && code.startsWith("Z_")) {
    const msg = (err as Error).message;
    return new ValidationError("bundle", code === "Z_BUF_ERROR" ? `gzip data is truncated (${msg})` : `is not gzip data (${msg})`);
  }
  return err; // an I/O error of the source, not a property of the bundle
}

function classifyTarError(err: unknown): unknown {
  if (err instanceof Error && !(err as NodeJS.ErrnoException).code) {
    return new ValidationError("bundle", `is not a valid tar archive (${err.message})`);
  }
  return err;
}

/** Checks a bundle without extracting it. Throws ValidationError saying what is wrong. */
export async function inspectBundle(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: InspectOptions): Promise<BundleInfo> {
  return walkBundle(source, opts);
}
