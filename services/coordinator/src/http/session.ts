// Who is asking: the gRPC bearer tokens (grpc.tokens, grpc/auth.ts) decide
// on the HTTP API too. A token comes as `Authorization: Bearer <token>` or in
// the HttpOnly cookie the login form sets (SameSite=Strict, so another site
// cannot make the browser send it). Without configured tokens the dashboard
// is open and read-only: nobody may cancel from it.
import type { IncomingMessage } from "node:http";
import type { Principal, TokenAuthenticator } from "../grpc/auth.js";
import { HttpError } from "./respond.js";

export const SESSION_COOKIE = "deploy_token";
const COOKIE_MAX_AGE_S = 12 * 3600;

export interface Caller {
  /** Undefined when authentication is off. */
  principal?: Principal;
  canCancel: boolean;
}

function tokenOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
    if (!m) throw new HttpError(401, "malformed authorization header (Authorization: Bearer <token>)");
    return m[1];
  }
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim()) || undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The caller, or 401 when tokens are configured and none valid was presented. */
export function identify(req: IncomingMessage, auth: TokenAuthenticator): Caller {
  if (!auth.enabled) return { canCancel: false };
  const token = tokenOf(req);
  if (token === undefined) throw new HttpError(401, "a token is required: log in, or send Authorization: Bearer <token>");
  const principal = auth.identify(token);
  if (!principal) throw new HttpError(401, "invalid token");
  return { principal, canCancel: principal.role === "deployer" };
}

/** Checks a presented login token; the cookie that keeps it. */
export function login(token: unknown, auth: TokenAuthenticator, secure: boolean): { caller: Caller; cookie: string } {
  if (!auth.enabled) throw new HttpError(400, "this coordinator has no tokens configured: nothing to log in to");
  if (typeof token !== "string" || !/^\S{1,4096}$/.test(token)) throw new HttpError(400, "token: expected a non-empty string");
  const principal = auth.identify(token);
  if (!principal) throw new HttpError(401, "invalid token");
  return { caller: { principal, canCancel: principal.role === "deployer" }, cookie: cookie(encodeURIComponent(token), COOKIE_MAX_AGE_S, secure) };
}

export const logoutCookie = (secure: boolean): string => cookie("", 0, secure);

function cookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/**
 * State-changing requests must come from this origin: a browser always sends
 * Origin on a cross-site POST, and the JSON content type already forces a
 * CORS preflight that this server never answers.
 */
export function checkSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new HttpError(403, "bad Origin header");
  }
  if (host !== req.headers.host) throw new HttpError(403, "cross-origin request refused");
}
