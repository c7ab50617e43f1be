// Signed commands: the coordinator signs the exact payload bytes of every
// command with an ed25519 nkey; agents verify against public keys pinned in
// their config before they look at anything else. The payload names the
// agent and the deployment (and the agent checks the subject against it), so
// a valid signature cannot be moved to another agent or deployment.
//
// Keys are NATS nkeys (https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_intro/nkey_auth):
// a seed "SU…" stays on the coordinator, its public key "U…" is pinned on
// the agents. Rotation: pin the new public key on every agent next to the old
// one, switch the coordinators to the new seed, then remove the old key.
import { readFileSync } from "node:fs";
import { createUser, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { ValidationError } from "./errors.js";

export const HDR_SIGNATURE = "Deploy-Signature";
export const HDR_SIGNER = "Deploy-Signer";

/** A user nkey public key: "U" and 55 more base32 characters. */
const PUBLIC_KEY = /^U[A-Z2-7]{55}$/;

export interface CommandSigner {
  /** The public key agents pin ("U…"). */
  readonly publicKey: string;
  /** base64url ed25519 signature of exactly these bytes. */
  sign(data: Uint8Array): string;
}

/** Headers the way @nats-io publish options and JsMsg both expose them. */
export interface HeaderReader {
  get(name: string): string;
}

export function isSignerPublicKey(s: string): boolean {
  if (!PUBLIC_KEY.test(s)) return false;
  try {
    fromPublic(s);
    return true;
  } catch {
    return false;
  }
}

/** A signer from a seed ("SU…"); the error never contains the seed. */
export function signerFromSeed(seed: string): CommandSigner {
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch {
    throw new ValidationError("signing.seed", "is not a valid nkey seed (expected a user seed, SU…)");
  }
  const publicKey = kp.getPublicKey();
  if (!publicKey.startsWith("U")) throw new ValidationError("signing.seed", "must be a user nkey seed (SU…)");
  return {
    publicKey,
    sign: (data) => Buffer.from(kp.sign(data)).toString("base64url"),
  };
}

/** Reads a seed file (the first non-empty, non-comment line). */
export function readSeedFile(path: string): string {
  const text = readFileSync(path, "utf8");
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#") && !l.startsWith("-"));
  if (!line) throw new ValidationError("signing.seedFile", `${path} holds no seed`);
  return line;
}

/** A fresh signing key pair, for scripts/gen-credentials.ts and tests. */
export function createSigningKey(): { seed: string; publicKey: string } {
  const kp = createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

export type Verification = { ok: true; signer: string } | { ok: false; error: string };

/**
 * Checks the signature headers of a command against the pinned keys. The
 * signer header only chooses which pinned key to try: a key that is not
 * pinned is refused whatever it signed.
 */
export function verifySignature(data: Uint8Array, h: HeaderReader | undefined, trusted: readonly string[]): Verification {
  const signature = h?.get(HDR_SIGNATURE) ?? "";
  const signer = h?.get(HDR_SIGNER) ?? "";
  if (!signature || !signer) return { ok: false, error: "command is not signed" };
  if (!trusted.includes(signer)) return { ok: false, error: `command is signed by ${signer.slice(0, 56)}, which is not a trusted signer` };
  // base64url of 64 bytes is 86 characters; anything else cannot be a signature.
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return { ok: false, error: "command signature is malformed" };
  let valid = false;
  try {
    valid = fromPublic(signer).verify(data, Buffer.from(signature, "base64url"));
  } catch {
    valid = false;
  }
  return valid ? { ok: true, signer } : { ok: false, error: `command signature does not match its content (signer ${signer})` };
}
