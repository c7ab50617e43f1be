// Who did something, as the audit log records it: always the authenticated
// identity (DESIGN.md, "Secure by default": the audit records who, from the
// authenticated identity, not from what a client wrote). The coordinator
// establishes it (grpc/auth.ts, http/session.ts); events carry it.

/**
 * How an identity was established: a bearer token (its configured name), a
 * client certificate checked by mutual TLS (its subject's CN), or nothing
 * at all (development mode without tokens or client certificates); or the
 * coordinator itself, for what it does on its own (CONVERGENCE).
 */
export const IDENTITY_SOURCES = ["token", "certificate", "none", "coordinator"] as const;
export type IdentitySource = (typeof IDENTITY_SOURCES)[number];

export interface Identity {
  name: string;
  via: IdentitySource;
}

/** Longest identity name recorded (token names are at most 64; a certificate's CN may be longer). */
export const MAX_IDENTITY_LENGTH = 256;

/**
 * Who asks for a convergence deployment (releases/convergence.ts): the
 * coordinator, never a caller; no token or certificate can be this
 * identity (sameIdentity compares the source too).
 */
export const CONVERGENCE: Identity = { name: "convergence", via: "coordinator" };

/** Who asks for the deployment that reverts a FAILED one with strategy.auto_revert (releases/rollback.ts). */
export const AUTO_REVERT: Identity = { name: "auto-revert", via: "coordinator" };

/** Who deregisters an agent silent longer than agents.forgetAfterMs (queries/listAgents.ts forgetSilentAgents). */
export const AGENT_EXPIRY: Identity = { name: "agent-expiry", via: "coordinator" };

/** Who a call comes from when nothing authenticates it (development mode only: production requires tokens). */
export const ANONYMOUS: Identity = { name: "anonymous (development mode)", via: "none" };

/**
 * Who asked for a deployment, and the client's free-text note, from its
 * spec. A spec written before identities were recorded has no
 * requestedByVia: its requestedBy was the client's own text, so it is shown
 * as the note and the identity is unknown ("").
 */
export function requesterOf(spec: { requestedBy: string; requestedByVia?: IdentitySource; requestedByNote?: string }): { identity: string; note: string } {
  if (spec.requestedByVia === undefined) return { identity: "", note: spec.requestedBy };
  return { identity: spec.requestedBy, note: spec.requestedByNote ?? "" };
}

/** True when two identities are the same principal (a token and a certificate of the same name are not). */
export const sameIdentity = (a: Identity, b: Identity): boolean => a.name === b.name && a.via === b.via;
