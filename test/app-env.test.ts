// apps.<app>.env: variables an app's hooks and deploy executable get from
// the agent's config (NODE_ENV, a proxy), on a real stack: the deploy
// executable and a bundle's hooks see them, DEPLOY_* stay the agent's, and
// a bad entry stops the agent at start naming the key.
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { makeBundle, script } from "./helpers/bundles.js";
import { Stack } from "./helpers/stack.js";

describe("apps.<app>.env", () => {
  const load = (apps: object) => () => loadAgentConfig([], { id: "a1", environment: "prod", devMode: true, apps: apps as never });

  it("refuses what is not a variable, a DEPLOY_* name and a value that is not a string, naming the key", () => {
    expect(load({ web: { env: { NODE_ENV: "production", http_proxy: "http://proxy:3128" } } })().apps.web!.env).toEqual({ NODE_ENV: "production", http_proxy: "http://proxy:3128" });
    expect(load({ web: { env: ["NODE_ENV=production"] } })).toThrow('invalid configuration: apps.web.env: must be an object like {"NODE_ENV": "production"}');
    expect(load({ web: { env: { "NODE ENV": "x" } } })).toThrow('invalid configuration: apps.web.env: "NODE ENV" is not a variable name (letters, digits and _, not starting with a digit)');
    expect(load({ web: { env: { DEPLOY_VERSION: "x" } } })).toThrow("invalid configuration: apps.web.env.DEPLOY_VERSION: DEPLOY_* variables are the agent's own");
    expect(load({ web: { env: { PORT: 8080 } } })).toThrow("invalid configuration: apps.web.env.PORT: must be a string");
  });

  describe("on a real stack", () => {
    let stack: Stack;
    let work: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), "app-env-"));
      const deploy = join(work, "deploy.sh");
      await writeFile(deploy, script('echo "NODE_ENV=$NODE_ENV LANG=$LANG DEPLOY_VERSION=$DEPLOY_VERSION"'), { mode: 0o755 });
      await chmod(deploy, 0o755);
      stack = await Stack.start({ agents: [] });
      await stack.startAgent("a1", { apps: { web: { deploy, env: { NODE_ENV: "production", LANG: "de_CH.UTF-8" } } } });
    });
    afterAll(async () => {
      await stack?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("the deploy executable and a bundle's hooks get them, over the agent's LANG; DEPLOY_* stay the agent's", async () => {
      const client = stack.client();
      const exe = await client.waitTerminal((await client.create({ requestId: "exe", app: "web", environment: stack.environment, changeset: { version: "v1" } })).id!);
      expect(exe.state, JSON.stringify(exe.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(exe.targets?.[0]?.lastOutput).toBe("NODE_ENV=production LANG=de_CH.UTF-8 DEPLOY_VERSION=v1");

      const data = await makeBundle([
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  validate: { run: validate.sh }\n" },
        { name: "validate.sh", mode: 0o755, content: script('echo "NODE_ENV=$NODE_ENV release=$DEPLOY_RELEASE"') },
      ]);
      const a = await client.upload("web", data);
      const d = await client.create({ requestId: "bundle", app: "web", environment: stack.environment, changeset: { version: "v2", artifact: { name: "web", digest: a.digest } } });
      const done = await client.waitTerminal(d.id!);
      expect(done.state, JSON.stringify(done.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(done.targets?.[0]?.lastOutput).toMatch(/^\[validate\] NODE_ENV=production release=v2-\S+$/);
    });

    it("a deploy executable that starts the app in the background succeeds at its exit, and the app keeps running", async () => {
      const pidFile = join(work, "server.pid");
      const deploy = join(work, "deploy-bg.sh");
      // `server &` without redirecting its output: the app holds the executable's pipes.
      await writeFile(deploy, script(`sleep 300 &\necho $! > ${JSON.stringify(pidFile)}\necho "server started"`), { mode: 0o755 });
      await stack.startAgent("a3", { apps: { bg: { deploy } } });
      const client = stack.client();
      const d = await client.waitTerminal((await client.create({ requestId: "bg", app: "bg", environment: stack.environment, changeset: { version: "v1" }, strategy: { applyTimeout: { seconds: 120 } } })).id!);
      const server = Number(await readFile(pidFile, "utf8"));
      try {
        expect(d.state, JSON.stringify(d.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
        expect(d.targets?.[0]?.message).toBe("exit code 0; left running: a process it started that holds its output, no longer captured");
        expect(d.targets?.[0]?.lastOutput).toMatch(/^\[agent\] exited, but a process it started still holds its output open/);
        process.kill(server, 0);
      } finally {
        process.kill(server, "SIGKILL");
      }
    });

    it("an app's deploy executable that is missing is told at the agent's start, and its deployment fails saying so", async () => {
      const missing = join(work, "not-installed-yet.sh");
      const agent = await stack.startAgent("a2", { apps: { shop: { deploy: missing } } });
      await agent.waitForLog("this app's deploy executable cannot start", 10_000);
      expect(agent.logs()).toContain(`${missing} does not exist`);
      const client = stack.client();
      const d = await client.waitTerminal((await client.create({ requestId: "missing", app: "shop", environment: stack.environment, changeset: { version: "v1" } })).id!);
      expect(d.state).toBe("DEPLOYMENT_STATE_FAILED");
      expect(d.targets?.[0]?.message).toMatch(new RegExp(`^could not start: ENOENT .*: ${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} does not exist`));
    });
  });
});
