// The desired release of an (app, environment): deploy_releases/<app>.<env>,
// written by coordinators (compare-and-set) after the finished event of the
// deployment that succeeded there. Its value names that deployment, what it
// installed and the desired release before it; the bucket's revisions of
// the key are the release history.
import { asArtifactName, asDigest } from "./artifacts.js";
import { ValidationError } from "./errors.js";
import { RELEASE_SCHEMA } from "./names.js";
import { MAX_SELECTOR_LENGTH } from "./selector.js";
import { asEnum, asInt, asIsoTime, asObject, asString, asToken, parseJson, type Obj } from "./validate.js";

/**
 * How the deployment chose its targets, which decides the agents
 * convergence brings to its release: every agent of the app and
 * environment ("all"), those its selector matches ("selector"), or none
 * beyond the explicit list it was given ("targets": a deployment to
 * hand-picked agents, a canary, spreads to no one else).
 */
export const SELECTIONS = ["all", "selector", "targets"] as const;
export type Selection = (typeof SELECTIONS)[number];

/** One desired release, without the one before it. */
export interface ReleaseSummary {
  /** The deployment that succeeded. */
  deploymentId: string;
  version: string;
  /** The bundle it installed; absent for an executable-mode deployment. */
  artifact?: { name: string; digest: string };
  /** What agents install it as: names.ts releaseName(version, deploymentId). */
  release: string;
  /** Stream time of its deployment.finished event. */
  succeededAt: string;
  /** Sequence of that event in DEPLOY_EVENTS: a desired release is only ever replaced by one that finished later. */
  finishedSeq: number;
  selection: Selection;
  /** Canonical selector text, when selection is "selector". */
  selector?: string;
}

export interface DesiredRelease extends ReleaseSummary {
  schema: typeof RELEASE_SCHEMA;
  app: string;
  environment: string;
  /** The desired release this one replaced, for history and rollback; absent for the first. */
  previous?: ReleaseSummary;
}

function parseSummary(o: Obj, field: string): ReleaseSummary {
  const a = o.artifact === undefined || o.artifact === null ? undefined : asObject(o.artifact, `${field}.artifact`);
  const selection = asEnum(o.selection ?? "all", `${field}.selection`, SELECTIONS);
  return {
    deploymentId: asToken(o.deploymentId, `${field}.deploymentId`),
    version: asString(o.version, `${field}.version`, { maxLength: 128 }),
    ...(a ? { artifact: { name: asArtifactName(a.name, `${field}.artifact.name`), digest: asDigest(a.digest, `${field}.artifact.digest`) } } : {}),
    release: asString(o.release, `${field}.release`, { maxLength: 256 }),
    succeededAt: asIsoTime(o.succeededAt, `${field}.succeededAt`),
    finishedSeq: asInt(o.finishedSeq, `${field}.finishedSeq`, 1, Number.MAX_SAFE_INTEGER),
    selection,
    ...(o.selector === undefined ? {} : { selector: asString(o.selector, `${field}.selector`, { maxLength: MAX_SELECTOR_LENGTH }) }),
  };
}

export function parseDesiredRelease(data: Uint8Array | string): DesiredRelease {
  const o = asObject(parseJson(data, "release"), "release");
  if (o.schema !== RELEASE_SCHEMA) throw new ValidationError("release.schema", `expected "${RELEASE_SCHEMA}"`);
  return {
    schema: RELEASE_SCHEMA,
    app: asToken(o.app, "release.app"),
    environment: asToken(o.environment, "release.environment"),
    ...parseSummary(o, "release"),
    ...(o.previous === undefined || o.previous === null ? {} : { previous: parseSummary(asObject(o.previous, "release.previous"), "release.previous") }),
  };
}

/** The release without its predecessor (what `previous` holds). */
export function summaryOf(r: ReleaseSummary): ReleaseSummary {
  return {
    deploymentId: r.deploymentId,
    version: r.version,
    ...(r.artifact ? { artifact: { name: r.artifact.name, digest: r.artifact.digest } } : {}),
    release: r.release,
    succeededAt: r.succeededAt,
    finishedSeq: r.finishedSeq,
    selection: r.selection,
    ...(r.selector === undefined ? {} : { selector: r.selector }),
  };
}
