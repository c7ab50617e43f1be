// deployctl logs: what the applies printed, read back from the deployment's
// events (target.progress), for every target, one target, as JSON, and
// followed as it comes. The BUILT CLI against a real stack (nats-server, a
// coordinator, three agents running a deploy executable).
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeployClient } from "./helpers/client.js";
import { CLI, deploymentIdOf, runCli, shown, shQuote, startShell, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";


describe("deployctl logs", () => {
  let stack: Stack;
  let client: DeployClient;
  let work: string;
  let env: Record<string, string>;
  let failed: string;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-logs-"));
    // a2 fails its "validation" for versions starting with bad; a version
    // starting with gated waits for the file <work>/gate after its first line.
    const script = join(work, "deploy.sh");
    await writeFile(
      script,
      [
        "#!/usr/bin/env bash",
        'echo "applying $DEPLOY_VERSION on $DEPLOY_AGENT_ID"',
        `case "$DEPLOY_VERSION" in gated*) while [ ! -f ${shQuote(join(work, "gate"))} ]; do sleep 0.05; done;; esac`,
        'case "$DEPLOY_AGENT_ID/$DEPLOY_VERSION" in a2/bad*) echo "validation failed: port 8080 refused" >&2; exit 3;; esac',
        // a3 prints more than its agent sends (DEPLOY_AGENT_MAX_OUTPUT_LINES 5 below).
        'if [ "$DEPLOY_AGENT_ID" = a3 ]; then for i in 1 2 3 4 5 6 7 8; do echo "a3 line $i"; done; fi',
        'echo "done on $DEPLOY_AGENT_ID"',
        "",
      ].join("\n"),
    );
    await chmod(script, 0o755);
    stack = await Stack.start({ agents: [] });
    for (const id of ["a1", "a2", "a3"]) {
      await stack.startAgent(id, { apps: { web: { deploy: script } }, env: id === "a3" ? { DEPLOY_AGENT_MAX_OUTPUT_LINES: "5" } : {} });
    }
    client = stack.client();
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, XDG_STATE_HOME: join(work, "state"), DEPLOY_COORDINATOR: stack.address };
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "bad1", "--max-concurrency", "3", "--max-failures", "1"]);
    expect(r.code, shown(r)).toBe(1);
    failed = deploymentIdOf(r);
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("prints every target's lines with its agent id, and the lines an agent cut on stderr", async () => {
    const r = await cli(["logs", failed]);
    expect(r.code, shown(r)).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toContain("a1 | applying bad1 on a1");
    expect(lines).toContain("a1 | done on a1");
    expect(lines).toContain("a2 | validation failed: port 8080 refused");
    expect(lines).not.toContain("a2 | done on a2");
    // a3 printed 10 lines; its agent sent the first 5.
    expect(lines.filter((l) => l.startsWith("a3 | "))).toEqual(["a3 | applying bad1 on a3", "a3 | a3 line 1", "a3 | a3 line 2", "a3 | a3 line 3", "a3 | a3 line 4"]);
    expect(r.stderr).toBe("a3: 5 more output line(s) not sent by the agent (its DEPLOY_AGENT_MAX_OUTPUT_LINES)\n");
  });

  it("--target: that target's bare lines, then how it ended on stderr; an agent that is not a target is NOT_FOUND (exit 2)", async () => {
    const r = await cli(["logs", failed, "--target", "a2"]);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout).toBe("applying bad1 on a2\nvalidation failed: port 8080 refused\n");
    expect(r.stderr).toBe("a2: FAILED: exit code 3\n");

    const none = await cli(["logs", failed, "--target", "a9"]);
    expect(none.code, shown(none)).toBe(2);
    expect(none.stderr).toBe(`deployctl: NOT_FOUND: agent a9 is not a target of deployment ${failed} (deployctl get ${failed} lists them)\n`);

    const missing = await cli(["logs", "d-0mwxzpgab-3e1e5ad5"]);
    expect(missing.code, shown(missing)).toBe(2);
    expect(missing.stderr).toContain("NOT_FOUND");
  });

  it("--json: one document with each line's sequence, time and agent", async () => {
    const r = await cli(["logs", failed, "--target", "a1", "--json"]);
    expect(r.code, shown(r)).toBe(0);
    const doc = JSON.parse(r.stdout) as { deploymentId: string; state: string; lastSequence: string; lines: { sequence: number; time: string; agentId: string; line: string }[] };
    expect(doc.deploymentId).toBe(failed);
    expect(doc.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(doc.lines.map((l) => l.line)).toEqual(["applying bad1 on a1", "done on a1"]);
    for (const l of doc.lines) {
      expect(l.agentId).toBe("a1");
      expect(l.sequence).toBeGreaterThan(0);
      expect(l.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
  });

  it("--follow prints lines as they come and ends with the deployment; without it, a running deployment's lines so far and a note", async () => {
    const r = await cli(["deploy", "--executable", "--app", "web", "--env", "prod", "--version", "gated1", "--max-concurrency", "3", "--targets", "a1", "--detach"]);
    expect(r.code, shown(r)).toBe(0);
    const id = deploymentIdOf(r);
    await until("a1's first line", async () => {
      const so = await cli(["logs", id, "--target", "a1"]);
      return so.stdout.includes("applying gated1 on a1") ? so : undefined;
    }).then((so) => {
      expect(so.stdout).toBe("applying gated1 on a1\n");
      expect(so.stderr).toContain(`deployment ${id} is RUNNING: more may come (deployctl logs ${id} --follow)`);
    });

    const following = startShell(`node ${shQuote(CLI)} logs ${id} --follow`, env);
    await following.waitFor(/a1 \| applying gated1 on a1\n/);
    await writeFile(join(work, "gate"), "");
    const done = await following.done;
    expect(done.code, shown(done)).toBe(0);
    expect(done.stdout).toBe("a1 | applying gated1 on a1\na1 | done on a1\n");
    expect((await client.get(id)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
});
