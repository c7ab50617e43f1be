// Who a DeployService call comes from, for the audit log: the bearer
// token's configured name when tokens are on; else, with mutual TLS, the
// client certificate's subject CN (the TLS layer has checked it against
// grpc.tls.clientCaFile); else "anonymous (development mode)" (production
// requires tokens). withAuth (auth.ts) establishes it before any handler
// runs; handlers read it with callIdentity. Never taken from the request.
import type { PeerCertificate } from "node:tls";
import { MAX_IDENTITY_LENGTH, type Identity } from "../../../shared/src/index.js";

/** The part of a grpc-js server call this reads (getAuthContext: grpc-js 1.10+). */
export interface CallWithAuthContext {
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

const identities = new WeakMap<object, Identity>();

export function setCallIdentity(call: object, identity: Identity): void {
  identities.set(call, identity);
}

/** The identity withAuth recorded for this call. Throws if there is none: a handler reached without withAuth is a bug, never "anonymous". */
export function callIdentity(call: object): Identity {
  const id = identities.get(call);
  if (!id) throw new Error("no identity recorded for this call (handler not wrapped by withAuth)");
  return id;
}

/** Printable, bounded: a name goes into events, logs and terminals. */
export function cleanIdentityName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?").trim().slice(0, MAX_IDENTITY_LENGTH);
}

/** A bearer token's identity: the name it is configured with (grpc.tokens). */
export const tokenIdentity = (principal: { name: string }): Identity => ({ name: cleanIdentityName(principal.name), via: "token" });

/**
 * The verified client certificate's subject CN (several CNs joined with
 * "+"), or its SHA-256 fingerprint when the subject has no CN; undefined
 * without a client certificate.
 */
export function certificateIdentity(call: CallWithAuthContext): Identity | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  // Node gives {} for "no certificate".
  if (!cert || !cert.raw) return undefined;
  const cn: unknown = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn.filter((x): x is string => typeof x === "string").join("+") : typeof cn === "string" ? cn : "";
  const clean = cleanIdentityName(name);
  return { name: clean !== "" ? clean : `certificate ${cert.fingerprint256 ?? "without subject"}`, via: "certificate" };
}
