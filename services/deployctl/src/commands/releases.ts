// deployctl releases <app> <env>: the desired release of an app in an
// environment (the last deployment that succeeded there) and the ones before
// it, newest first; the first row is the one agents converge to.
import type { ReleaseMsg } from "../client.js";
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { jsonDocument } from "../render/json.js";
import { ago, isoTime, shortDigest, table, tsMs } from "../render/format.js";

const print = (s: string): boolean => process.stdout.write(s.endsWith("\n") ? s : s + "\n");

type Release = NonNullable<ReleaseMsg["desired"]>;

const artifactText = (r: Release): string => (r.artifact?.name ? `${r.artifact.name}@${shortDigest(r.artifact.digest)}` : "none (executable)");
const targetsText = (r: Release): string => (r.selection === "selector" ? `selector ${r.selector ?? ""}` : r.selection || "-");

export async function releasesCommand(app: string, environment: string, o: CommonOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const res = await client.getRelease(app, environment);
    if (o.json) {
      print(jsonDocument("deploy.v1.GetReleaseResponse", res));
      return EXIT.OK;
    }
    const desired = res.desired;
    if (!desired) {
      print(`no desired release of ${app} in ${environment}`);
      return EXIT.OK;
    }
    const all = [desired, ...(res.history ?? [])];
    // How long it has been the desired release (deploy --from-env --min-soak asks it of a promotion), on this machine's clock.
    const age = tsMs(desired.succeededAt) === undefined ? "" : `, succeeded ${ago(desired.succeededAt)}`;
    print(`${app} in ${environment}: desired release ${desired.release} (deployment ${desired.deploymentId}${age}); convergence ${res.convergence ? "on" : "off"}`);
    print(
      table(
        ["", "RELEASE", "VERSION", "ARTIFACT", "DEPLOYMENT", "SUCCEEDED", "TARGETS"],
        all.map((r, i) => [i === 0 ? "*" : "", r.release || "-", r.version || "-", artifactText(r), r.deploymentId || "-", isoTime(r.succeededAt), targetsText(r)]),
      ),
    );
    return EXIT.OK;
  } finally {
    client.close();
  }
}
