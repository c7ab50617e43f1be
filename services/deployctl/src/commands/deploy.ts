// deployctl deploy <directory or .tar.gz>: pack, upload, create, follow.
import { randomUUID } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { loadBundle } from "../pack.js";
import { bytes } from "../render/format.js";
import { chooseView } from "../render/view.js";
import { followToExit, resumeCommand } from "./following.js";

export interface DeployOptions extends CommonOptions {
  app: string;
  env: string;
  version: string;
  maxConcurrency?: number;
  maxFailures?: number;
  targets?: string[];
  requestId?: string;
  requestedBy?: string;
  detach?: boolean;
}

/** Who asked, as the audit log shows it. Part of the request body, so it must be stable across retries. */
export function defaultRequestedBy(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return `${user}@${hostname()} (deployctl)`;
}

export async function deployCommand(path: string, o: DeployOptions): Promise<ExitCode> {
  const view = chooseView(o.json === true);
  const bundle = await loadBundle(path);
  const client = clientFor(o);
  try {
    view.note(
      bundle.entries !== undefined
        ? `packed ${path}: ${bundle.entries} entries, ${bytes(bundle.size)}, ${bundle.digest}`
        : `bundle ${path}: ${bytes(bundle.size)}, ${bundle.digest}`,
      { type: "deployctl.bundle", path, digest: bundle.digest, size: bundle.size },
    );
    const artifact = await client.uploadArtifact(o.app, bundle.digest, bundle.file, bundle.size);
    view.note(`uploaded artifact ${artifact.name ?? o.app} ${artifact.digest ?? bundle.digest} (hooks: ${artifact.hooks?.join(", ") || "none"})`, {
      type: "deployctl.artifact",
      artifact,
    });

    // Printed before the call: if it times out or this process dies, the
    // same command with this id is answered with the same deployment.
    const requestId = o.requestId ?? randomUUID();
    view.note(`request id ${requestId} (to retry safely, re-run with --request-id ${requestId})`, { type: "deployctl.request", requestId });
    const d = await client.createDeployment({
      requestId,
      app: o.app,
      environment: o.env,
      changeset: { version: o.version, artifact: { name: artifact.name ?? o.app, digest: artifact.digest ?? bundle.digest } },
      strategy: { maxConcurrency: o.maxConcurrency, maxFailures: o.maxFailures },
      targets: o.targets ?? [],
      requestedBy: o.requestedBy ?? defaultRequestedBy(),
    });
    view.note(`deployment ${d.id ?? "?"}: ${d.app ?? o.app} ${o.version} to ${d.environment ?? o.env}, ${d.targets?.length ?? 0} target(s)`, {
      type: "deployctl.created",
      deployment: d,
    });
    if (o.detach) {
      view.note(`detached; follow it with: ${resumeCommand(d.id ?? "", o.coordinator)}`, { type: "deployctl.detached", deploymentId: d.id ?? "" });
      return EXIT.OK;
    }
    return await followToExit(client, view, d, 0, o.coordinator);
  } finally {
    client.close();
    await bundle.cleanup();
  }
}
