// deploy.yaml, the manifest at the root of every changeset bundle. One parser
// for the coordinator (which refuses a bad bundle at upload) and the agent
// (which reads it again before installing).
import { parse as parseYaml } from "yaml";
import { ValidationError } from "../errors.js";

export const MANIFEST_FILE = "deploy.yaml";
/** Hooks in the order they run. */
export const HOOK_NAMES = ["stop", "before_install", "after_install", "start", "validate"] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface Hook {
  /** Path of the script inside the bundle, relative, normalised (no "./"). */
  run: string;
  timeoutMs: number;
}

export interface Manifest {
  version: 1;
  hooks: Partial<Record<HookName, Hook>>;
  keepReleases: number;
  /**
   * Paths of the release that live in <root>/<app>/shared instead, kept from
   * release to release (uploads, logs, a local .env): each is a symlink there
   * in every release (Capistrano's linked_dirs / linked_files, Deployer's
   * shared_dirs / shared_files). Normalised, none inside another.
   */
  sharedDirs: string[];
  sharedFiles: string[];
}

/** The most entries shared_dirs and shared_files may each have. */
export const MAX_SHARED = 100;

export const DEFAULT_HOOK_TIMEOUT_MS = 300_000;
export const DEFAULT_KEEP_RELEASES = 5;
const MAX_HOOK_TIMEOUT_MS = 24 * 3600 * 1000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "30s", "5m", "1h", "1m30s" → milliseconds. */
export function parseDuration(v: unknown, field: string): number {
  if (typeof v !== "string" || v.trim() === "") throw new ValidationError(field, `must be a duration like "30s" or "5m"`);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== v.length) throw new ValidationError(field, `"${v.slice(0, 40)}" is not a duration like "30s" or "5m"`);
  if (total < 1) throw new ValidationError(field, "must be longer than 0");
  if (total > MAX_HOOK_TIMEOUT_MS) throw new ValidationError(field, "must be at most 24h");
  return Math.round(total);
}

/** A relative path inside the bundle, normalised; refuses absolute paths and "..". */
export function normaliseBundlePath(p: string, field: string): string {
  if (p.startsWith("/")) throw new ValidationError(field, `"${p}" must be relative to the bundle root`);
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.length === 0) throw new ValidationError(field, "is empty");
  if (parts.includes("..")) throw new ValidationError(field, `"${p}" must not contain ".."`);
  return parts.join("/");
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ValidationError(where ? `${where}.${k}` : k, `unknown key (allowed: ${allowed.join(", ")})`);
  }
}

/**
 * Parses deploy.yaml. `files`, when given, holds the bundle's regular files
 * (normalised paths): every hook's script must be one of them.
 */
export function parseManifest(text: string, files?: ReadonlySet<string>): Manifest {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ValidationError(MANIFEST_FILE, `is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ValidationError(MANIFEST_FILE, "must be a mapping");
  const o = doc as Record<string, unknown>;
  checkKeys(o, ["version", "hooks", "keep_releases", "shared_dirs", "shared_files"], "");
  if (o.version !== 1) throw new ValidationError("version", "must be 1");
  const hooks: Partial<Record<HookName, Hook>> = {};
  if (o.hooks !== undefined && o.hooks !== null) {
    if (typeof o.hooks !== "object" || Array.isArray(o.hooks)) throw new ValidationError("hooks", "must be a mapping");
    const h = o.hooks as Record<string, unknown>;
    checkKeys(h, HOOK_NAMES, "hooks");
    for (const name of HOOK_NAMES) {
      const spec = h[name];
      if (spec === undefined || spec === null) continue;
      if (typeof spec !== "object" || Array.isArray(spec)) throw new ValidationError(`hooks.${name}`, "must be a mapping with run and optional timeout");
      const s = spec as Record<string, unknown>;
      checkKeys(s, ["run", "timeout"], `hooks.${name}`);
      if (typeof s.run !== "string" || s.run === "") throw new ValidationError(`hooks.${name}.run`, "is required");
      const run = normaliseBundlePath(s.run, `hooks.${name}.run`);
      if (files && !files.has(run)) throw new ValidationError(`hooks.${name}.run`, `script "${run}" is not a regular file in the bundle`);
      hooks[name] = { run, timeoutMs: s.timeout === undefined ? DEFAULT_HOOK_TIMEOUT_MS : parseDuration(s.timeout, `hooks.${name}.timeout`) };
    }
  }
  let keepReleases = DEFAULT_KEEP_RELEASES;
  if (o.keep_releases !== undefined) {
    if (typeof o.keep_releases !== "number" || !Number.isInteger(o.keep_releases) || o.keep_releases < 2 || o.keep_releases > 100) {
      throw new ValidationError("keep_releases", "must be an integer from 2 to 100");
    }
    keepReleases = o.keep_releases;
  }
  const sharedDirs = sharedList(o.shared_dirs, "shared_dirs");
  const sharedFiles = sharedList(o.shared_files, "shared_files");
  checkShared(sharedDirs, sharedFiles, hooks);
  return { version: 1, hooks, keepReleases, sharedDirs, sharedFiles };
}

function sharedList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ValidationError(field, "must be a list of paths relative to the bundle root");
  if (v.length > MAX_SHARED) throw new ValidationError(field, `must have at most ${MAX_SHARED} entries`);
  return v.map((p, i) => {
    if (typeof p !== "string") throw new ValidationError(`${field}[${i}]`, "must be a path");
    return normaliseBundlePath(p, `${field}[${i}]`);
  });
}

/**
 * No shared path twice or inside another (a link inside a link), none the
 * manifest, and no hook script in one: a hook runs from the release that
 * brought it, never from data a release left behind.
 */
function checkShared(dirs: string[], files: string[], hooks: Partial<Record<HookName, Hook>>): void {
  const all = [...dirs.map((p, i) => ({ p, field: `shared_dirs[${i}]` })), ...files.map((p, i) => ({ p, field: `shared_files[${i}]` }))];
  for (const [i, a] of all.entries()) {
    if (a.p === MANIFEST_FILE) throw new ValidationError(a.field, `${MANIFEST_FILE} cannot be shared`);
    for (const b of all.slice(0, i)) {
      if (a.p === b.p) throw new ValidationError(a.field, `"${a.p}" is also ${b.field}`);
      if (a.p.startsWith(`${b.p}/`) || b.p.startsWith(`${a.p}/`)) throw new ValidationError(a.field, `"${a.p}" and ${b.field} "${b.p}" are inside one another`);
    }
    for (const [name, h] of Object.entries(hooks)) {
      if (h && (h.run === a.p || h.run.startsWith(`${a.p}/`))) throw new ValidationError(a.field, `"${a.p}" holds the script of hooks.${name}: hooks run from the release, not from shared data`);
    }
  }
}
