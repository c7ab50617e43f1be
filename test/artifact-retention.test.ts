// Artifact retention (services/coordinator/src/artifacts/retention.ts), end
// to end on a real stack with artifacts.keepPerApp = 2: after each new
// upload, an app's bucket keeps its 2 newest artifacts, every artifact its
// releases name (the desired one and the history rollbacks use) and the
// artifact of an active deployment; the rest is deleted. A rollback to a
// release beyond the newest 2 still finds its artifact.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBundle, script } from "./helpers/bundles.js";
import type { DeployClient } from "./helpers/client.js";
import { Stack } from "./helpers/stack.js";

/** A bundle whose start hook sleeps `sleepS` seconds (0: none). */
function bundle(version: string, sleepS = 0): Promise<Buffer> {
  return makeBundle([
    { name: "deploy.yaml", content: `version: 1\nhooks:\n  start: { run: hooks/start.sh, timeout: 60s }\n` },
    { name: "app/VERSION", content: version },
    { name: "hooks/start.sh", mode: 0o755, content: script(sleepS > 0 ? `sleep ${sleepS}\n` : "exit 0\n") },
  ]);
}

/** The versions of app web stored now (an upload is answered once its prune is done). */
async function stored(client: DeployClient, digests: Map<string, string>): Promise<string[]> {
  const versionOf = new Map([...digests].map(([v, d]) => [d, v]));
  return ((await client.listArtifacts("web", "web")).artifacts ?? []).map((a) => versionOf.get(a.digest) ?? a.digest).sort();
}

describe("artifact retention (artifacts.keepPerApp)", () => {
  let stack: Stack;
  let client: DeployClient;
  const digests = new Map<string, string>();
  const upload = async (version: string, sleepS = 0): Promise<void> => {
    digests.set(version, (await client.upload("web", await bundle(version, sleepS))).digest);
  };
  const deploy = async (version: string, wait = true): Promise<string> => {
    const d = await client.create({ requestId: `ret-${version}`, app: "web", environment: "prod", changeset: { version, artifact: { name: "web", digest: digests.get(version)! } } });
    if (wait) expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    return d.id!;
  };

  beforeAll(async () => {
    stack = await Stack.start({ agents: ["r1"], coordinatorEnv: { DEPLOY_ARTIFACT_KEEP: "2" } });
    client = stack.client();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("keeps the newest, the desired release and its history, and an active deployment's; deletes the rest", { timeout: 120_000 }, async () => {
    await upload("v1");
    await deploy("v1"); // v1: the desired release
    for (const v of ["v2", "v3", "v4"]) await upload(v);
    expect(await stored(client, digests)).toEqual(["v1", "v3", "v4"]);

    await deploy("v3"); // desired v3; v1 is in its history
    for (const v of ["v5", "v6"]) await upload(v);
    expect(await stored(client, digests)).toEqual(["v1", "v3", "v5", "v6"]);

    // v7 stays in use while its deployment runs (its start hook sleeps),
    // though two newer uploads follow it.
    await upload("v7", 6);
    const running = await deploy("v7", false);
    for (const v of ["v8", "v9"]) await upload(v);
    expect(await stored(client, digests)).toEqual(["v1", "v3", "v7", "v8", "v9"]);
    expect((await client.waitTerminal(running)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");

    // The release before the desired one (v3, now 5 uploads old) is still there to roll back to.
    const rb = await client.rollback({ requestId: "ret-rollback", app: "web", environment: "prod" });
    expect((await client.waitTerminal(rb.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(rb.changeset?.artifact?.digest).toBe(digests.get("v3"));
  });
});
