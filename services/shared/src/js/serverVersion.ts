// The oldest nats-server the product runs on, and the check that refuses an
// older one at connect time. 2.11 is the floor: `sync_interval` (the
// production durability setting, 2.10), per-message TTLs and the batched
// direct gets the protocol may use (2.11); tests run on the version pinned in
// scripts/tools.sh.

export const MIN_SERVER_VERSION = "2.11.0";

/** [major, minor, patch] of "v2.15.2", "2.11.0-RC.1"…, or null when it is not a version. */
export function parseServerVersion(v: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  if (m === null) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** a < b, comparing major, minor, patch. */
function older(a: [number, number, number], b: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** A server older than MIN_SERVER_VERSION: the processes print its message alone and exit 2. */
export class ServerTooOldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServerTooOldError";
  }
}

/** Error when the server's version is older than MIN_SERVER_VERSION (or unreadable), else null. */
export function serverVersionError(found: string | undefined, url: string): string | null {
  const min = parseServerVersion(MIN_SERVER_VERSION)!;
  const v = found === undefined ? null : parseServerVersion(found);
  if (v === null) {
    return `nats-server at ${url} reports version ${JSON.stringify(found ?? "")}, which is not a version; nats-deploy needs ${MIN_SERVER_VERSION} or later`;
  }
  if (older(v, min)) {
    return `nats-server at ${url} is version ${found}; nats-deploy needs ${MIN_SERVER_VERSION} or later (upgrade the server; scripts/tools.sh builds the tested one)`;
  }
  return null;
}
