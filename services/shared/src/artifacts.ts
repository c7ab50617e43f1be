// Artifact names and digests: how a changeset bundle is addressed in the
// deploy_artifacts object store.
import { ValidationError } from "./errors.js";

export interface ArtifactRef {
  name: string;
  /** "sha256:<64 hex>" */
  digest: string;
  /** Bytes; set by the coordinator from the stored object. */
  size: number;
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const ARTIFACT_NAME_RULE = "1-128 characters from A-Z a-z 0-9 . _ -";

export function asArtifactName(v: unknown, field: string): string {
  if (typeof v !== "string" || v === "") throw new ValidationError(field, "is required");
  if (!NAME.test(v) || v === "." || v === "..") throw new ValidationError(field, `"${v.slice(0, 80)}" is not valid: use ${ARTIFACT_NAME_RULE}`);
  return v;
}

export function asDigest(v: unknown, field: string): string {
  if (typeof v !== "string" || v === "") throw new ValidationError(field, "is required");
  if (!DIGEST.test(v)) throw new ValidationError(field, `"${v.slice(0, 80)}" is not valid: use sha256:<64 lowercase hex digits>`);
  return v;
}

/** The object's name in deploy_artifacts: content-addressed, so identical uploads land on one object. */
export const artifactObjectName = (name: string, digest: string): string => `${name}@${digest}`;

export function parseArtifactObjectName(objectName: string): { name: string; digest: string } | undefined {
  const at = objectName.lastIndexOf("@");
  if (at <= 0) return undefined;
  const name = objectName.slice(0, at);
  const digest = objectName.slice(at + 1);
  return NAME.test(name) && DIGEST.test(digest) ? { name, digest } : undefined;
}
