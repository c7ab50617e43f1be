// CreateDeployment validate_only and `deployctl deploy --dry-run`, on a real
// stack: the answer is the deployment the request would create (no id, its
// targets and strategy resolved), or the error the create would give, and
// nothing is written: no deployment, no request mapping (the same request
// id is then accepted for real), no lock, no artifact.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcError, type DeployClient } from "./helpers/client.js";
import { HELLO, runCli, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

describe("validate_only and deploy --dry-run", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });
  const shown = (r: CliResult): string => `exit ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "dry-run-"));
    const script = join(work, "deploy.sh");
    await writeFile(script, "#!/usr/bin/env bash\nsleep 3\necho done\n");
    await chmod(script, 0o755);
    stack = await Stack.start({ agents: [] });
    for (const id of ["a1", "a2", "a3"]) await stack.startAgent(id, { apps: { web: { deploy: script } }, env: { DEPLOY_AGENT_LABELS: JSON.stringify({ zone: id === "a3" ? "b" : "a" }) } });
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("answers with the deployment it would create and writes nothing; the same request id is then created for real", async () => {
    const req = { requestId: "dry-1", app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 2 }, selector: "zone=a" };
    const would = await client.create({ ...req, validateOnly: true });
    expect(would.id).toBe("");
    expect(would.state).toBe("DEPLOYMENT_STATE_PENDING");
    expect(would.message).toBe("validate_only: the request is valid; nothing was created");
    expect((would.targets ?? []).map((t) => t.agentId).sort()).toEqual(["a1", "a2"]);
    // What each target runs now: nothing yet.
    for (const t of would.targets ?? []) expect(t.message).toBe("no release of web installed");
    expect(would.strategy?.maxConcurrency).toBe(2);
    expect((await client.list({ app: "web", environment: "prod" })).deployments ?? []).toEqual([]);
    // Not recorded: the same request id, for real, is a new deployment.
    const real = await client.create(req);
    expect(real.id).toMatch(/^d-/);
    // While it is active, a validate_only request gets the create's refusal, naming it.
    const busy = await grpcError(client.create({ ...req, requestId: "dry-2", validateOnly: true }));
    expect(busy?.code).toBe(9);
    // Still PENDING or RUNNING, as its first reconcile has dispatched it or not.
    expect(busy?.details).toMatch(new RegExp(`^deployment ${real.id} is still (PENDING|RUNNING) for app web in environment prod$`));
    expect((await client.waitTerminal(real.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    // Bad input: the create's own error.
    const none = await grpcError(client.create({ ...req, requestId: "dry-3", selector: "zone=c", validateOnly: true }));
    expect(none?.details).toMatch(/^selector "zone=c" matches no agent/);
    expect((await client.list({ app: "web", environment: "prod" })).deployments?.map((d) => d.id)).toEqual([real.id]);
  });

  it("deployctl deploy --dry-run prints the targets, checks the bundle here, and uploads and creates nothing", async () => {
    const exe = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "v2", "--max-concurrency", "50%", "--dry-run"]);
    expect(exe.code, shown(exe)).toBe(0);
    expect(exe.stdout).toMatch(/^dry run: would deploy web v2 to prod, 3 target\(s\); max concurrency 2, max failures 0; nothing was uploaded or created$/m);
    // Each target with what it runs now: a1 and a2 got v1 (zone=a) above, a3 nothing.
    const v1 = (await client.list({ app: "web", environment: "prod" })).deployments[0]!;
    for (const id of ["a1", "a2"]) expect(exe.stdout).toMatch(new RegExp(`^  ${id}  now on v1-${v1.id!.slice(-8)}$`, "m"));
    expect(exe.stdout).toMatch(/^ {2}a3 {2}no release of web installed$/m);

    const bundle = await cli(["deploy", HELLO, "--app", "web", "--env", "prod", "--version", "v3", "--dry-run", "--json"]);
    expect(bundle.code, shown(bundle)).toBe(0);
    expect(bundle.stderr).toMatch(/bundle checked here \(hooks: [^)]*\); not uploaded/);
    const doc = JSON.parse(bundle.stdout) as { following: string; deployment: { id?: string; targets: unknown[] } };
    expect(doc.following).toBe("dry-run");
    expect(doc.deployment.id ?? "").toBe("");
    expect(doc.deployment.targets).toHaveLength(3);
    expect((await client.listArtifacts()).artifacts ?? []).toEqual([]);
    expect((await client.list({ app: "web", environment: "prod" })).deployments).toHaveLength(1);
  });
});
