// `npm run cluster` runs secured (issue 18): scripts/cluster.ts, as a person
// runs it, generates credentials with gen-credentials' code and starts three
// NATS nodes requiring nkeys and TLS, two coordinators and three agents in
// production mode. The deploy commands it prints work as printed (with the
// export line it prints), the nats CLI command it prints reads the stream
// with the admin nkey and the CA, nothing runs in development mode, and an
// unauthenticated client is refused. Ctrl-C stops it all.
// (test/cluster.test.ts covers the same topology's fault tolerance in
// development mode.)
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/paths.js";
import { toolPath } from "../scripts/lib/tools.js";
import { runCli } from "./helpers/deployctl.js";

const CLUSTER = join(ROOT, "dist/scripts/cluster.js");

describe("npm run cluster (secured unless --dev)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cluster-secured-"));
  let child: ChildProcessWithoutNullStreams | undefined;
  let out = "";
  afterAll(async () => {
    // After a failure: Ctrl-C, so the launcher stops the processes it started
    // (each in its own process group: a SIGKILL of the launcher leaves them).
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      child.kill("SIGINT");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 60_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it("prints commands that work as printed, with TLS, a token and nkeys; nothing in development mode; Ctrl-C stops it", { timeout: 240_000 }, async () => {
    child = spawn(process.execPath, [CLUSTER, "--dir", join(dir, "cluster")], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child!.once("exit", (code) => r(code)));
    for (const until = Date.now() + 180_000; !out.includes("Ctrl-C stops everything."); ) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`cluster did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out).toMatch(/secured: credentials in /);
    expect(out).not.toContain("DEVELOPMENT MODE");

    const block = /\ndeploy:\n((?: {2}.*\n)+)/.exec(out)![1]!.trim().split("\n").map((l) => l.trim());
    const exp = /^export DEPLOY_TLS=1 DEPLOY_CA=(\S+) DEPLOY_TOKEN=\$\(cat (\S+)\)$/.exec(block[0]!);
    expect(exp, block[0]).not.toBeNull();
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, DEPLOY_TLS: "1", DEPLOY_CA: exp![1]!, DEPLOY_TOKEN: readFileSync(exp![2]!, "utf8").trim() };
    for (const line of block.slice(1)) {
      expect(line).toMatch(/^npx deployctl /);
      const r = await runCli(line.replace(/^npx deployctl /, "").split(/\s+/), { env });
      expect(r.code, `${line}\n${r.stdout}${r.stderr}`).toBe(0);
      if (line.includes(" deploy ")) expect(r.stdout + r.stderr).toMatch(/SUCCEEDED/);
      if (line.includes(" agents ")) for (const id of ["web-1", "web-2", "web-3"]) expect(r.stdout).toContain(id);
    }
    // Without the token the coordinators refuse.
    const { DEPLOY_TOKEN: _t, ...noToken } = env;
    const anonymous = await runCli(block[1]!.replace(/^npx deployctl /, "").split(/\s+/), { env: noToken });
    expect(anonymous.stderr).toMatch(/UNAUTHENTICATED/);

    // The nats CLI command it prints (admin nkey, CA); without them: refused.
    const natsLine = /^ {2}nats (.*?)\s+#/m.exec(out)![1]!.split(/\s+/);
    const nats = (args: string[]): { code: number; out: string } => {
      try {
        return { code: 0, out: execFileSync(toolPath("nats"), args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "", HOME: dir } }) };
      } catch (err) {
        const e = err as { status: number; stdout: string; stderr: string };
        return { code: e.status, out: `${e.stdout}${e.stderr}` };
      }
    };
    const info = nats(natsLine);
    expect(info.code, info.out).toBe(0);
    expect(info.out).toMatch(/Replicas: 3|Cluster Information/);
    const server = natsLine[natsLine.indexOf("--server") + 1]!;
    expect(nats(["--server", server, "stream", "info", "DEPLOY_EVENTS"]).code).not.toBe(0);

    // Every coordinator and agent ran in production mode.
    const logs = join(dir, "cluster", "logs");
    await new Promise((r) => setTimeout(r, 1000)); // the launcher copies logs every 500 ms
    for (const f of readdirSync(logs).filter((f) => /^(coordinator|agent)-/.test(f))) {
      const text = readFileSync(join(logs, f), "utf8");
      expect(text, f).not.toContain("DEVELOPMENT MODE");
      if (f.startsWith("coordinator")) expect(text, f).toContain("agents are held to their bindings");
      else expect(text, f).toContain("only signed commands are accepted");
    }

    // Least privilege cost nothing: no process was refused anything it did (deploying a bundle included).
    const natsLogs = readdirSync(logs).filter((f) => f.startsWith("nats-"));
    expect(natsLogs).toHaveLength(3);
    for (const f of natsLogs) {
      const text = readFileSync(join(logs, f), "utf8");
      expect(text, f).toContain("Server is ready");
      expect(text, f).not.toMatch(/(Publish|Subscription) Violation/);
    }

    child.kill("SIGINT");
    expect(await exited, out).toBe(0);
  });
});
