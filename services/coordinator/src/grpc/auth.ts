// gRPC authentication and authorization: bearer tokens with roles, and TLS.
//
// Config holds only SHA-256 hashes of tokens, so a leaked config file gives
// no access. A presented token is hashed and compared with every configured
// hash in constant time (no early exit), so timing tells nothing about which
// entry, or how much of one, matched.
//
// Roles: `viewer` reads (Get/List/Watch, agents, artifacts); `deployer` also
// creates, cancels, pauses, resumes, promotes, rolls back, cordons,
// uncordons and deregisters agents, and uploads. A deployer token may be
// scoped to environments and apps ("environments": ["staging", "qa"],
// "apps": ["web"], or "name:deployer:sha256hex:staging+qa:web"): it changes
// nothing elsewhere (scope.ts); it still reads everything. Health checking and reflection are served
// outside DeployService and stay open (reflection only describes the public
// proto).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { Metadata, ServerCredentials, status, type ServiceError, type UntypedHandleCall } from "@grpc/grpc-js";
import { ANONYMOUS, isToken, TOKEN_RULE, type Logger } from "../../../shared/src/index.js";
import { certificateIdentity, setCallIdentity, tokenIdentity, type CallWithAuthContext } from "./identity.js";
import { scopeRefusal, type ScopeTable } from "./scope.js";

export const ROLES = ["viewer", "deployer"] as const;
export type Role = (typeof ROLES)[number];

/** The least role each DeployService method needs. */
export const METHOD_ROLES: Record<string, Role> = {
  CreateDeployment: "deployer",
  CancelDeployment: "deployer",
  PauseDeployment: "deployer",
  ResumeDeployment: "deployer",
  PromoteDeployment: "deployer",
  RollbackRelease: "deployer",
  RevertDeployment: "deployer",
  CordonAgent: "deployer",
  UncordonAgent: "deployer",
  FreezeEnvironment: "deployer",
  UnfreezeEnvironment: "deployer",
  SetEnvironmentPolicy: "deployer",
  DeregisterAgent: "deployer",
  UploadArtifact: "deployer",
  GetDeployment: "viewer",
  ListDeployments: "viewer",
  WatchDeployment: "viewer",
  ListAgents: "viewer",
  ListFreezes: "viewer",
  ListEnvironmentPolicies: "viewer",
  GetRelease: "viewer",
  GetArtifact: "viewer",
  ListArtifacts: "viewer",
};

const RANK: Record<Role, number> = { viewer: 1, deployer: 2 };

export interface TokenEntry {
  /** Who holds the token, for the log (never the token itself). */
  name: string;
  role: Role;
  sha256: Buffer;
  /** A deployer's environments: it changes nothing in any other (scope.ts). Absent: every environment. */
  environments?: readonly string[];
  /** A deployer's apps: it changes nothing of any other (scope.ts). Absent: every app. */
  apps?: readonly string[];
}

export interface Principal {
  name: string;
  role: Role;
  environments?: readonly string[];
  apps?: readonly string[];
}

export class AuthConfigError extends Error {}

/** Hex SHA-256 of a token: what goes into the config (`deployctl`-side tokens are never stored). */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function parseEntry(v: unknown, field: string): TokenEntry {
  let name: unknown, role: unknown, hash: unknown, environments: unknown, apps: unknown;
  if (typeof v === "string") {
    // "name:role:sha256hex" (the env form), or "role:sha256hex"; a deployer
    // scoped to environments, and to apps: "name:deployer:sha256hex:staging+qa"
    // or "name:deployer:sha256hex:staging+qa:web" ("*": every environment;
    // +, not a comma: the env form is a comma-separated list of entries).
    const parts = v.trim().split(":");
    const rest = parts[2] === "sha256" ? [...parts.slice(0, 2), ...parts.slice(3)] : parts;
    if (rest.length >= 3 && rest.length <= 5) [name, role, hash, environments, apps] = rest;
    else if (rest.length === 2) [role, hash] = rest;
    else throw new AuthConfigError(`${field}: expected "name:role:sha256hex" or "name:deployer:sha256hex:env1+env2[:app1+app2]"`);
    environments = typeof environments === "string" && environments !== "*" ? environments.split("+") : undefined;
    apps = typeof apps === "string" ? apps.split("+") : undefined;
  } else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    ({ name, role, sha256: hash, environments, apps } = v as Record<string, unknown>);
  } else {
    throw new AuthConfigError(`${field}: expected "name:role:sha256hex" or {"name", "role", "sha256", "environments", "apps"}`);
  }
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) throw new AuthConfigError(`${field}.role: must be one of ${ROLES.join(", ")}`);
  const hex = typeof hash === "string" ? hash.replace(/^sha256:/, "").toLowerCase() : "";
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new AuthConfigError(`${field}.sha256: must be the 64 hex digits of the token's SHA-256 (never the token itself)`);
  const envScope = scopeOf(environments, "environment", role as Role, `${field}.environments`);
  const appScope = scopeOf(apps, "app", role as Role, `${field}.apps`);
  return {
    name: typeof name === "string" && name !== "" ? name.slice(0, 64) : `${role}-${hex.slice(0, 8)}`,
    role: role as Role,
    sha256: Buffer.from(hex, "hex"),
    ...(envScope ? { environments: envScope } : {}),
    ...(appScope ? { apps: appScope } : {}),
  };
}

/** A deployer token's environments or apps: a non-empty list of names; none for a viewer (it only reads, and reads everything). */
function scopeOf(v: unknown, what: "environment" | "app", role: Role, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (role !== "deployer") throw new AuthConfigError(`${field}: only a deployer token is scoped to ${what}s (a viewer reads every one)`);
  if (!Array.isArray(v) || v.length === 0) throw new AuthConfigError(`${field}: must be a non-empty list of ${what} names (leave it out for every ${what})`);
  for (const e of v) if (typeof e !== "string" || !isToken(e)) throw new AuthConfigError(`${field}: "${String(e).slice(0, 80)}" is not an ${what} name (${TOKEN_RULE})`);
  return [...new Set(v as string[])].sort();
}

/** Entries from `grpc.tokens` (strings or objects) and the JSON file `grpc.tokensFile` (an array, or {"tokens": [...]}) */
export function loadTokens(tokens: readonly unknown[], tokensFile: string): TokenEntry[] {
  const out = tokens.filter((t) => !(typeof t === "string" && t.trim() === "")).map((t, i) => parseEntry(t, `grpc.tokens[${i}]`));
  if (tokensFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(tokensFile, "utf8")) as unknown;
    } catch (err) {
      throw new AuthConfigError(`grpc.tokensFile: cannot read ${tokensFile} as JSON (${(err as Error).message})`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { tokens?: unknown })?.tokens;
    if (!Array.isArray(list)) throw new AuthConfigError(`grpc.tokensFile: ${tokensFile} must hold an array or {"tokens": [...]}`);
    list.forEach((t, i) => out.push(parseEntry(t, `grpc.tokensFile[${i}]`)));
  }
  return out;
}

export class TokenAuthenticator {
  constructor(private readonly entries: readonly TokenEntry[]) {}

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The principal a presented token belongs to, or undefined. */
  identify(token: string): Principal | undefined {
    const digest = createHash("sha256").update(token, "utf8").digest();
    let found: TokenEntry | undefined;
    for (const e of this.entries) {
      // Every entry is compared, match or not.
      if (timingSafeEqual(digest, e.sha256) && !found) found = e;
    }
    return found && { name: found.name, role: found.role, ...(found.environments ? { environments: found.environments } : {}), ...(found.apps ? { apps: found.apps } : {}) };
  }

  /** Null when the call may go on, else the status to end it with. */
  check(method: string, metadata: Metadata): { principal?: Principal; error?: Partial<ServiceError> } {
    if (!this.enabled) return {};
    const header = metadata.get("authorization")[0];
    const value = typeof header === "string" ? header : header?.toString("utf8");
    const m = value === undefined ? null : /^Bearer\s+(\S{1,4096})\s*$/i.exec(value);
    if (!m) return { error: { code: status.UNAUTHENTICATED, details: "missing bearer token (metadata authorization: Bearer <token>)" } };
    const principal = this.identify(m[1]!);
    if (!principal) return { error: { code: status.UNAUTHENTICATED, details: "invalid bearer token" } };
    const need = METHOD_ROLES[method] ?? "deployer";
    if (RANK[principal.role] < RANK[need]) {
      return { principal, error: { code: status.PERMISSION_DENIED, details: `${method} needs role ${need}; token ${principal.name} has role ${principal.role}` } };
    }
    return { principal };
  }
}

type AnyCall = { metadata: Metadata; request?: unknown; emit(event: "error", err: unknown): boolean; getPeer(): string } & CallWithAuthContext;
type Callback = (err: Partial<ServiceError> | null, value?: unknown) => void;

/**
 * Wraps every DeployService handler: the token is checked before the handler
 * runs, and the caller's identity recorded for it (identity.ts): the token's
 * name; without tokens, the client certificate's CN when `mutualTls` (the
 * TLS layer verified it), else "anonymous (development mode)".
 * Server-streaming handlers take one argument (the call); unary and
 * client-streaming ones also a callback.
 */
export function withAuth<H extends object>(handlers: H, auth: TokenAuthenticator, log: Logger, opts: { mutualTls: boolean; scope?: ScopeTable } = { mutualTls: false }): H {
  const out: Record<string, UntypedHandleCall> = {};
  for (const [method, handler] of Object.entries(handlers as Record<string, (...args: unknown[]) => void>)) {
    out[method] = ((call: AnyCall, callback?: Callback) => {
      const refuse = (error: Partial<ServiceError>, principal?: Principal): void => {
        log.warn({ method, peer: call.getPeer(), code: error.code, principal: principal?.name, details: error.details }, "call refused");
        if (callback) callback(error, null);
        else call.emit("error", error);
      };
      if (!auth.enabled) {
        setCallIdentity(call, (opts.mutualTls ? certificateIdentity(call) : undefined) ?? ANONYMOUS);
        handler(call, callback);
        return;
      }
      const { principal, error } = auth.check(method, call.metadata);
      if (error) return refuse(error, principal);
      setCallIdentity(call, tokenIdentity(principal!));
      if ((!principal!.environments && !principal!.apps) || !opts.scope?.[method]) {
        handler(call, callback);
        return;
      }
      // A deployer scoped to environments or apps: what this call acts on first.
      scopeRefusal(opts.scope, principal, method, call.request).then(
        (why) => (why === undefined ? handler(call, callback) : refuse({ code: status.PERMISSION_DENIED, details: why }, principal)),
        (err: unknown) => refuse({ code: status.UNAVAILABLE, details: `cannot tell what ${method} acts on: ${(err as Error).message}` }, principal),
      );
    }) as UntypedHandleCall;
  }
  return out as H;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** When set, clients must present a certificate signed by this CA. */
  clientCaFile: string;
}

export function serverCredentials(tls: TlsFiles): ServerCredentials {
  if (!tls.certFile && !tls.keyFile) return ServerCredentials.createInsecure();
  if (!tls.certFile || !tls.keyFile) throw new AuthConfigError("grpc.tls: certFile and keyFile go together");
  const read = (file: string, key: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new AuthConfigError(`grpc.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const ca = tls.clientCaFile ? read(tls.clientCaFile, "clientCaFile") : null;
  return ServerCredentials.createSsl(ca, [{ cert_chain: read(tls.certFile, "certFile"), private_key: read(tls.keyFile, "keyFile") }], ca !== null);
}
