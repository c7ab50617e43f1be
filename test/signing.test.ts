// Command signatures: node:crypto's ed25519 (services/shared/src/signing.ts)
// on the nkeys' raw keys gives exactly the signatures the nkeys library
// gives, and verifies them; a changed byte, another key or a key that is not
// pinned never verifies.
import { randomBytes } from "node:crypto";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { nkeyAuthenticator } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { nkeyConnectAuthenticator, signerFromSeed, verifySignature } from "../services/shared/src/signing.js";

const headers = (signature: string, signer: string) => ({ get: (n: string): string => (n === "Deploy-Signature" ? signature : n === "Deploy-Signer" ? signer : "") });

describe("command signatures", () => {
  it("sign as the nkeys library does, and verify its signatures", () => {
    for (let i = 0; i < 50; i++) {
      const seed = new TextDecoder().decode(createUser().getSeed());
      const kp = fromSeed(new TextEncoder().encode(seed));
      const data = randomBytes(1 + (i * 37) % 2000);
      const signer = signerFromSeed(seed);
      expect(signer.publicKey).toBe(kp.getPublicKey());
      const ours = signer.sign(data);
      expect(ours).toBe(Buffer.from(kp.sign(data)).toString("base64url"));
      expect(kp.verify(data, Buffer.from(ours, "base64url"))).toBe(true);
      expect(verifySignature(data, headers(ours, signer.publicKey), [signer.publicKey])).toEqual({ ok: true, signer: signer.publicKey });
    }
  });

  it("refuses a changed byte, another key's signature, and a signer that is not pinned", () => {
    const a = signerFromSeed(new TextDecoder().decode(createUser().getSeed()));
    const b = signerFromSeed(new TextDecoder().decode(createUser().getSeed()));
    const data = Buffer.from(JSON.stringify({ schema: "deploy.command.v1", agentId: "a1" }));
    const sig = a.sign(data);
    const changed = Buffer.from(data);
    changed[5] = changed[5]! ^ 1;
    expect(verifySignature(changed, headers(sig, a.publicKey), [a.publicKey]).ok).toBe(false);
    expect(verifySignature(data, headers(b.sign(data), a.publicKey), [a.publicKey]).ok).toBe(false);
    const untrusted = verifySignature(data, headers(b.sign(data), b.publicKey), [a.publicKey]);
    expect(untrusted.ok).toBe(false);
    expect(untrusted.ok ? "" : untrusted.error).toMatch(/not a trusted signer/);
    expect(verifySignature(data, headers(sig, a.publicKey), [a.publicKey, b.publicKey]).ok).toBe(true);
  });

  it("refuses a seed that is not a user seed, naming the field", () => {
    expect(() => signerFromSeed("SUNOTASEED")).toThrow(/signing\.seed/);
    const account = new TextDecoder().decode(createUser().getSeed()).replace(/^SU/, "SA");
    expect(() => signerFromSeed(account)).toThrow(/signing\.seed/);
  });
  it("a connection's nkey authentication answers the server's nonce exactly as the client library's does; a bad seed is refused naming its field", () => {
    for (let i = 0; i < 20; i++) {
      const seed = new TextDecoder().decode(createUser().getSeed());
      const ours = nkeyConnectAuthenticator(seed);
      const library = nkeyAuthenticator(new TextEncoder().encode(seed));
      const nonce = randomBytes(8 + i).toString("base64url");
      expect(ours(nonce)).toEqual(library(nonce));
      expect(ours(undefined)).toEqual(library(undefined));
    }
    expect(() => nkeyConnectAuthenticator("SUnotaseed")).toThrow(/nats\.nkeySeedFile.*not a valid nkey seed/);
  });
});
