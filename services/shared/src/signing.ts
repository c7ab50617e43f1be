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
//
// The nkeys library parses and checks keys; signing and verifying use
// node:crypto's ed25519 (OpenSSL) on the same raw keys, which gives the same
// signatures (ed25519 is deterministic). The library's pure-JS ed25519 took
// 5.5-15 ms to sign and 4.7-8 ms to verify one command on the loaded 2-core
// bench machine (100 of each, a 600-byte payload; two runs): a fan-out of
// 100 spent 0.5-1.5 s signing in the coordinator, and agents sharing a
// process verified one after another (bench --quick --only security, fan-out
// of 10: dispatched → started p50 284 ms with security on, 45 ms off).
// node:crypto, same measurement: 0.08 ms to sign, 0.18 ms to verify.
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createUser, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { ValidationError } from "./errors.js";

export const HDR_SIGNATURE = "Deploy-Signature";
export const HDR_SIGNER = "Deploy-Signer";

/** A user nkey public key: "U" and 55 more base32 characters. */
const PUBLIC_KEY = /^U[A-Z2-7]{55}$/;

/** RFC 4648 base32 (no padding), as nkeys encode: a checked key's bytes. */
function base32Decode(s: string): Buffer {
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new Error("not base32");
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// DER prefixes of an ed25519 private key (PKCS #8) and public key (SPKI)
// around their 32 raw bytes (RFC 8410).
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** The 32 raw bytes of an nkey already checked by the nkeys library: after its prefix (a seed's 2 bytes, a public key's 1), before the CRC. */
const rawKey = (nkey: string, prefixBytes: number): Buffer => base32Decode(nkey).subarray(prefixBytes, prefixBytes + 32);

/** Public keys as node:crypto objects, per pinned signer (a handful). */
const publicKeys = new Map<string, KeyObject>();

function publicKeyObject(signer: string): KeyObject {
  let key = publicKeys.get(signer);
  if (!key) {
    fromPublic(signer); // checks prefix and CRC; throws on a bad key
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, rawKey(signer, 1)]), format: "der", type: "spki" });
    publicKeys.set(signer, key);
  }
  return key;
}

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

/** A user nkey seed ("SU…") as node:crypto's private key, and its public key; `field` names it in the error, which never contains the seed. */
function userKeyFromSeed(seed: string, field: string): { publicKey: string; privateKey: KeyObject } {
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch {
    throw new ValidationError(field, "is not a valid nkey seed (expected a user seed, SU…)");
  }
  const publicKey = kp.getPublicKey();
  if (!publicKey.startsWith("U")) throw new ValidationError(field, "must be a user nkey seed (SU…)");
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, rawKey(seed.trim(), 2)]), format: "der", type: "pkcs8" });
  // The key node:crypto derived must be the one nkeys derived: never sign with another.
  const derived = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(SPKI_ED25519.length);
  if (!derived.equals(rawKey(publicKey, 1))) throw new ValidationError(field, "could not be read as an ed25519 key");
  return { publicKey, privateKey };
}

/** A signer from a seed ("SU…"); the error never contains the seed. */
export function signerFromSeed(seed: string): CommandSigner {
  const { publicKey, privateKey } = userKeyFromSeed(seed, "signing.seed");
  return {
    publicKey,
    sign: (data) => cryptoSign(null, data, privateKey).toString("base64url"),
  };
}

/**
 * What a NATS connection authenticates with when it has a user nkey: the
 * public key and the server's nonce signed, exactly as the client library's
 * nkeyAuthenticator answers (ed25519 is deterministic; standard base64, as
 * it encodes), but signed with node:crypto and the public key derived once.
 * The library's pure-JS ed25519 derived the public key and signed at every
 * connect: 16 ms of CPU per connection (bench --only security --cpu-prof:
 * 1.6 s of a host process's CPU for its 100 agents' connects, and their
 * start took 2.7 s against 0.5 s without security).
 */
export function nkeyConnectAuthenticator(seed: string, field = "nats.nkeySeedFile"): (nonce?: string) => { nkey: string; sig: string } {
  const { publicKey, privateKey } = userKeyFromSeed(seed, field);
  return (nonce) => ({ nkey: publicKey, sig: nonce ? cryptoSign(null, Buffer.from(nonce, "utf8"), privateKey).toString("base64") : "" });
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
    valid = cryptoVerify(null, data, publicKeyObject(signer), Buffer.from(signature, "base64url"));
  } catch {
    valid = false;
  }
  return valid ? { ok: true, signer } : { ok: false, error: `command signature does not match its content (signer ${signer})` };
}
