// deployctl deploy: pack, check the agents and the request, upload, create,
// follow. With --executable there is no bundle: the changeset carries only
// the version, and each agent runs the deploy executable configured for the
// app.
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { hostname, userInfo } from "node:os";
import { status, type ServiceError } from "@grpc/grpc-js";
import type { ArtifactRef } from "../../../shared/src/gen/deploy/v1/ArtifactRef.js";
import type { CreateDeploymentRequest } from "../../../shared/src/gen/deploy/v1/CreateDeploymentRequest.js";
import type { Release__Output as Release } from "../../../shared/src/gen/deploy/v1/Release.js";
import { EXIT, UsageError, isServiceError, type ExitCode } from "../errors.js";
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_UNPACKED_BYTES, inspectBundle } from "../../../shared/src/bundle/inspect.js";
import { ALREADY_CURRENT, errorMessage } from "../../../shared/src/index.js";
import { protoTime } from "../../../shared/src/proto.js";
import { clientFor, type CommonOptions } from "../options.js";
import { loadBundle, type Bundle } from "../pack.js";
import { promotedDetail } from "../render/deployment.js";
import { bytes } from "../render/format.js";
import { chooseView } from "../render/view.js";
import { activeDeploymentOf, activeRefusal, activeWaitMs, createWhenFree, type BusyOptions } from "./busy.js";
import { detachOrFollow } from "./following.js";
import { preflightProblem } from "./preflight.js";
import { checkStrategy, strategyOf, type StrategyOptions } from "./strategy.js";

export interface DeployOptions extends CommonOptions, StrategyOptions, BusyOptions {
  app: string;
  env: string;
  /** Required but with fromEnv (checkMode). */
  version?: string;
  /** No bundle: the desired release of the app in this environment (promote_from). */
  fromEnv?: string;
  /** With fromEnv: the least time since that release succeeded there (promote_min_soak), ms. */
  minSoak?: number;
  targets?: string[];
  /** A label selector (never with targets): the live agents whose labels match. */
  selector?: string;
  requestId?: string;
  /** Free text recorded as the deployment's note (request field requested_by); who asked is the caller's authenticated identity. */
  note?: string;
  /** Old name of note. */
  requestedBy?: string;
  detach?: boolean;
  /** No bundle: each agent runs the app's configured deploy executable. */
  executable?: boolean;
  /** Check and show what the deployment would be (CreateDeployment validate_only); upload and create nothing. */
  dryRun?: boolean;
  /** Deploy although the environment is frozen, and why (freeze_override_reason: recorded with the deployment). */
  overrideFreeze?: string;
}

/** The default note: who ran deployctl where. Part of the request body, so it must be stable across retries. */
export function defaultRequestedBy(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return `${user}@${hostname()} (deployctl)`;
}

/** The CreateDeployment request of a deploy (or its dry run, without the artifact). */
function createRequest(o: DeployOptions, requestId: string, artifact?: ArtifactRef): CreateDeploymentRequest {
  return {
    requestId,
    app: o.app,
    environment: o.env,
    ...(o.fromEnv ? { promoteFrom: o.fromEnv } : { changeset: { version: o.version ?? "", ...(artifact ? { artifact } : {}) } }),
    ...(o.fromEnv && o.minSoak !== undefined ? { promoteMinSoak: protoTime(o.minSoak) } : {}),
    strategy: strategyOf(o),
    targets: o.targets ?? [],
    ...(o.selector ? { selector: o.selector } : {}),
    requestedBy: o.note ?? o.requestedBy ?? defaultRequestedBy(),
    ...(o.overrideFreeze ? { freezeOverrideReason: o.overrideFreeze } : {}),
  };
}

/**
 * --dry-run: the bundle checked here as the coordinator would check it at
 * upload (not uploaded: an upload is a write, and prunes old artifacts),
 * then CreateDeployment with validate_only and the changeset's version
 * only, which checks the rest and answers with the deployment it would be.
 */
async function dryRun(client: ReturnType<typeof clientFor>, view: ReturnType<typeof chooseView>, bundle: Bundle | undefined, o: DeployOptions): Promise<ExitCode> {
  if (bundle) {
    const info = await inspectBundle(createReadStream(bundle.file), { maxExpansionRatio: DEFAULT_MAX_EXPANSION_RATIO, compressedSize: bundle.size, maxUnpackedBytes: DEFAULT_MAX_UNPACKED_BYTES, maxEntries: DEFAULT_MAX_ENTRIES }).catch(
      (err: unknown) => {
        throw new UsageError(errorMessage(err));
      },
    );
    const hooks = Object.keys(info.manifest.hooks);
    view.note(`bundle checked here (hooks: ${hooks.join(", ") || "none"}); not uploaded`);
  }
  const d = await client.createDeployment({ ...createRequest(o, o.requestId ?? randomUUID()), validateOnly: true });
  const targets = d.targets ?? [];
  const skipped = targets.filter((t) => t.state === "TARGET_STATE_SKIPPED");
  const current = skipped.filter((t) => t.message?.startsWith(ALREADY_CURRENT)).length;
  const version = d.changeset?.version ?? o.version;
  const why = [...(skipped.length > current ? [`${skipped.length - current} offline`] : []), ...(current > 0 ? [`${current} already on ${version}`] : [])];
  const s = d.strategy;
  view.note(
    `dry run: would deploy ${d.app ?? o.app} ${version} to ${d.environment ?? o.env}${promotedText(d.promotedFrom)}, ${targets.length} target(s)` +
      `${why.length > 0 ? ` (${why.join(", ")}: would be SKIPPED)` : ""}; max concurrency ${s?.maxConcurrency ?? "?"}, max failures ${s?.maxFailures ?? "?"}` +
      `${s?.canary ? `, canary ${s.canary}` : ""}; nothing was uploaded or created`,
    { deployment: d, dryRun: true },
  );
  // Each target with what it runs now (or why it would be skipped).
  for (const t of targets) view.note(`  ${t.agentId ?? "?"}  ${t.state === "TARGET_STATE_SKIPPED" ? "SKIPPED: " : ""}${t.message ?? ""}`.trimEnd());
  // Agents the coordinator left out (cordoned), after its standard sentence.
  const left = /; (\d+ cordoned agent\(s\) left out: .*)$/.exec(d.message ?? "");
  if (left) view.note(left[1]!);
  return EXIT.OK;
}

/**
 * Before a bundle is uploaded: would the coordinator accept this request?
 * CreateDeployment with validate_only and the version only (as --dry-run
 * asks) checks the request, the environment's freeze and policy, the
 * caller's scope, the strategy and the targets, and writes nothing. A
 * refusal is thrown as the create's would be, with nothing uploaded: an
 * upload is a write, it prunes the app's old artifacts
 * (artifacts.keepPerApp), and a bundle of hundreds of MB takes its time,
 * all for a deployment that was never going to be created. A refusal for
 * an active deployment of the pair is left to createWhenFree when the
 * request waits for it or replaces it. Not asked for a retry with
 * --request-id: a request accepted before is answered with its deployment
 * whatever is refused now. The create still has the last word (a freeze
 * set in between refuses it after the upload).
 */
async function refusedBeforeUpload(client: ReturnType<typeof clientFor>, o: DeployOptions): Promise<void> {
  if (o.requestId !== undefined) return;
  try {
    await client.createDeployment({ ...createRequest(o, randomUUID()), validateOnly: true });
  } catch (err) {
    if (activeDeploymentOf(err) === undefined) throw err;
    if (activeWaitMs(o) === 0) throw activeRefusal(err as ServiceError);
  }
}

/** A bundle, --executable or --from-env: exactly one, and a version but with --from-env (checked before anything is read or sent). */
function checkMode(path: string | undefined, o: DeployOptions): void {
  if (o.minSoak !== undefined && o.fromEnv === undefined) throw new UsageError("--min-soak needs --from-env: it is how long the release promoted must have succeeded there");
  if (o.fromEnv !== undefined) {
    const other = [path !== undefined ? "a bundle" : "", o.executable ? "--executable" : "", o.version !== undefined ? "--version" : ""].filter(Boolean);
    if (other.length > 0) throw new UsageError(`--from-env deploys the release of ${o.fromEnv} as it is: not with ${other.join(", ")}`);
    if (o.fromEnv === o.env) throw new UsageError(`--from-env ${o.fromEnv} is the environment deployed to: name the environment whose release to deploy to ${o.env}`);
    return;
  }
  if (path !== undefined && o.executable) throw new UsageError("give a bundle or --executable, not both");
  if (path === undefined && !o.executable) {
    throw new UsageError("deploy needs a bundle (a directory or .tar.gz with deploy.yaml at its root) or --executable to have each agent run the app's configured deploy executable (or --from-env to deploy another environment's release)");
  }
  if (o.version === undefined) throw new UsageError("--version is required (but with --from-env)");
}

/** ", promoted from staging (release v2-1a2b3c4d, deployment d-…, artifact sha256:…)", or "". */
export function promotedText(p: Release | null | undefined): string {
  return p?.environment ? `, promoted from ${p.environment} (${promotedDetail(p)})` : "";
}

export async function deployCommand(path: string | undefined, o: DeployOptions): Promise<ExitCode> {
  checkMode(path, o);
  checkStrategy(o);
  if (o.dryRun && (o.waitActive !== undefined || o.cancelActive || o.killActive)) throw new UsageError("--dry-run creates nothing: --wait-active, --cancel-active and --kill-active do not apply to it");
  const view = chooseView(o.json === true);
  let bundle: Bundle | undefined;
  let client: ReturnType<typeof clientFor> | undefined;
  try {
    bundle = path === undefined ? undefined : await loadBundle(path);
    client = clientFor(o);
    if (bundle) {
      view.note(
        bundle.entries !== undefined
          ? `packed ${path}: ${bundle.entries} entries, ${bytes(bundle.size)}, ${bundle.digest}`
          : `bundle ${path}: ${bytes(bundle.size)}, ${bundle.digest}`,
      );
    } else if (o.fromEnv) {
      view.note(`no bundle: the desired release of ${o.app} in ${o.fromEnv}, as it is (its version and bundle)`);
    } else {
      view.note(`no bundle: each agent runs the deploy executable it has configured for app ${o.app}`);
    }

    // The agents first: an environment nobody serves is refused before a
    // bundle is uploaded for nothing.
    const problem = await preflightProblem(client, { app: o.app, environment: o.env, targets: o.targets, selector: o.selector });
    // A retry with --request-id of a request the coordinator accepted earlier
    // is answered with that deployment whatever the agents are now: ask it
    // (without uploading) before refusing.
    if (problem && o.requestId === undefined) throw problem;
    if (problem) view.note(`${problem.message}; asking the coordinator whether request ${o.requestId} was accepted before (nothing uploaded)`);

    if (o.dryRun) {
      if (problem) throw problem;
      return await dryRun(client, view, bundle, o);
    }
    let artifact: ArtifactRef | undefined;
    if (bundle && !problem) {
      await refusedBeforeUpload(client, o);
      const uploaded = await client.uploadArtifact(o.app, bundle.digest, bundle.file, bundle.size);
      artifact = { name: uploaded.name || o.app, digest: uploaded.digest || bundle.digest };
      view.note(`uploaded artifact ${artifact.name} ${artifact.digest} (hooks: ${uploaded.hooks?.join(", ") || "none"})`, { artifact: uploaded });
    } else if (bundle) {
      artifact = { name: o.app, digest: bundle.digest };
    }

    // Printed before the call: if it times out or this process dies, the
    // same command with this id is answered with the same deployment.
    const requestId = o.requestId ?? randomUUID();
    view.note(`request id ${requestId} (to retry safely, re-run with --request-id ${requestId})`, { requestId });
    const c = client;
    const what = `deployctl deploy of ${o.app} ${o.fromEnv ? `(the release of ${o.fromEnv})` : o.version} to ${o.env} (request ${requestId})`;
    const d = await createWhenFree(c, view, o, what, () => c.createDeployment(createRequest(o, requestId, artifact)))
      .catch((err: unknown) => {
        // Not accepted before, and refused for the agents (or the bundle
        // deliberately not uploaded): the agents' problem is the clearer
        // answer. ALREADY_EXISTS and the like say more as they are.
        const refused = isServiceError(err) && (err.code === status.FAILED_PRECONDITION || err.code === status.INVALID_ARGUMENT);
        throw problem && refused ? problem : err;
      });
    view.note(`deployment ${d.id ?? "?"}: ${d.app ?? o.app} ${d.changeset?.version ?? o.version} to ${d.environment ?? o.env}, ${d.targets?.length ?? 0} target(s)${promotedText(d.promotedFrom)}`, { deployment: d });
    return await detachOrFollow(client, view, d, o);
  } finally {
    view.close();
    client?.close();
    await bundle?.cleanup();
  }
}
