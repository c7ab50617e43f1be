// apps.<app>.user: an app's hooks and deploy executable run as its own
// account, which owns its releases and seeded shared paths, while the
// app's directory, releases/, shared/ and current stay the agent's. End to
// end on a real stack (an agent process as root, the account `nobody`);
// the agent must be root to change account, so these run only as root (CI
// does).
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAgentConfig } from "../services/agent/src/config.js";
import { makeBundle, script } from "./helpers/bundles.js";
import { Stack } from "./helpers/stack.js";

const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

describe("apps.<app>.user: the agent's config", () => {
  const load = (apps: object) => () => loadAgentConfig([], { id: "a1", environment: "prod", devMode: true, apps: apps as never });

  it("resolves a user by name or uid, with its primary group or the one given", () => {
    const byName = load({ web: { user: "nobody" } })().apps.web!.runAs;
    expect(byName).toMatchObject({ uid: NOBODY, user: "nobody" });
    expect(typeof byName?.gid).toBe("number");
    expect(typeof byName?.home).toBe("string");
    expect(load({ web: { user: String(NOBODY), group: "root" } })().apps.web!.runAs).toMatchObject({ uid: NOBODY, gid: 0, user: "nobody" });
  });

  it("refuses an account that does not exist, and a group without a user, naming the key", () => {
    expect(load({ web: { user: "no-such-user-here" } })).toThrow(
      'invalid configuration: apps.web.user: no user "no-such-user-here" on this machine (getent passwd no-such-user-here finds none)',
    );
    expect(load({ web: { user: "nobody", group: "no-such-group-here" } })).toThrow(/apps\.web\.user: no group "no-such-group-here" on this machine/);
    expect(load({ web: { group: "root" } })).toThrow("invalid configuration: apps.web.group: needs apps.web.user (the group of that account)");
    expect(load({ web: { user: "bad name" } })).toThrow('invalid configuration: apps.web.user: "bad name" is not a user name or uid');
    expect(load({ web: { runas: "nobody" } })).toThrow("invalid configuration: apps.web.runas: unknown key (allowed: deploy, user, group, env)");
  });
});

describe.skipIf(!asRoot)("apps.<app>.user: hooks and the deploy executable run as the app's account", () => {
  let stack: Stack;
  let work: string;
  let out: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "run-as-"));
    // nobody must reach the scripts, the releases and a place to write to.
    out = join(work, "out");
    await mkdir(out);
    await chmod(out, 0o777);
    await chmod(work, 0o755);
    const deploy = join(work, "deploy.sh");
    await writeFile(deploy, script(`echo "uid=$(id -u) home=$HOME user=$USER version=$DEPLOY_VERSION"\ntouch ${out}/executable-ran`), { mode: 0o755 });
    stack = await Stack.start({ agents: [] });
    await chmod(stack.dir, 0o755);
    await stack.startAgent("a1", { apps: { web: { deploy, user: "nobody" } } });
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("the deploy executable runs as the account, with its HOME and USER", async () => {
    const client = stack.client();
    const d = await client.create({ requestId: "exe-1", app: "web", environment: stack.environment, changeset: { version: "v0" } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state, JSON.stringify(done.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.targets?.[0]?.lastOutput ?? "").toMatch(/^uid=65534 home=\S+ user=nobody version=v0$/);
    expect((await stat(join(out, "executable-ran"))).uid).toBe(NOBODY);
  });

  it("a bundle's hooks run as the account, which owns the release and the seeded shared paths; releases/, shared/ and current stay root's", async () => {
    const client = stack.client();
    const hook = (name: string): string =>
      script(`echo "${name} uid=$(id -u)"\necho "${name}" >> storage/log\ntouch "$DEPLOY_RELEASE_DIR/written-by-${name}"`);
    const data = await makeBundle([
      { name: "deploy.yaml", content: "version: 1\nhooks:\n  after_install: { run: hooks/after_install.sh }\n  validate: { run: hooks/validate.sh }\nshared_dirs: [storage]\n" },
      { name: "hooks/after_install.sh", mode: 0o755, content: hook("after_install") },
      { name: "hooks/validate.sh", mode: 0o755, content: hook("validate") },
      { name: "storage/seed.txt", content: "seeded" },
    ]);
    const a = await client.upload("web", data);
    const d = await client.create({ requestId: "bundle-1", app: "web", environment: stack.environment, changeset: { version: "v1", artifact: { name: "web", digest: a.digest } } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state, JSON.stringify(done.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(done.targets?.[0]?.lastOutput).toBe("[validate] validate uid=65534");

    const app = join(stack.rootOf("a1"), "web");
    const release = join(app, "current");
    expect((await stat(release)).uid).toBe(NOBODY);
    for (const f of ["deploy.yaml", "hooks/validate.sh", "written-by-after_install", "written-by-validate"]) expect((await lstat(join(release, f))).uid, f).toBe(NOBODY);
    expect((await stat(join(app, "shared", "storage"))).uid).toBe(NOBODY);
    expect((await stat(join(app, "shared", "storage", "seed.txt"))).uid).toBe(NOBODY);
    expect(await readFile(join(app, "shared", "storage", "log"), "utf8")).toBe("after_install\nvalidate\n");
    for (const p of [app, join(app, "releases"), join(app, "shared")]) expect((await stat(p)).uid, p).toBe(0);
    expect((await lstat(release)).uid).toBe(0);
  });

  it("old releases the account owns are pruned as the account (emptied with its rights, then removed), and so are files it made in them", async () => {
    const client = stack.client();
    const app = join(stack.rootOf("a1"), "web");
    const deploy = async (v: string): Promise<string> => {
      const data = await makeBundle([
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  after_install: { run: build.sh }\nkeep_releases: 2\n" },
        // What a build in the release leaves: directories and files of the account's own.
        { name: "build.sh", mode: 0o755, content: script('mkdir -p cache/deep && echo x > cache/deep/file && ln -s /etc cache/etc-link') },
      ]);
      const a = await client.upload("web", data);
      const d = await client.create({ requestId: `prune-${v}`, app: "web", environment: stack.environment, changeset: { version: v, artifact: { name: "web", digest: a.digest } } });
      const done = await client.waitTerminal(d.id!);
      expect(done.state, JSON.stringify(done.targets)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      return done.targets?.[0]?.message ?? "";
    };
    const releases = async (): Promise<string[]> => (await readdir(join(app, "releases"))).filter((n) => !n.startsWith(".")).map((n) => n.split("-")[0]!).sort();
    for (const v of ["v2", "v3", "v4"]) expect(await deploy(v)).toMatch(/^release v\d-\S+ is current$/);
    expect(await releases()).toEqual(["v3", "v4"]);
    // Something in v3 only root may delete: emptied as the account, v3 stays, and the install says so.
    const v3 = (await readdir(join(app, "releases"))).find((n) => n.startsWith("v3-"))!;
    await mkdir(join(app, "releases", v3, "cache", "roots"));
    await writeFile(join(app, "releases", v3, "cache", "roots", "file"), "root's");
    expect(await deploy("v5")).toMatch(new RegExp(`^release v5-\\S+ is current; pruning old releases failed: emptying \\S+/${v3} as uid ${NOBODY} failed: .*Permission denied`));
    expect(await releases()).toEqual(["v3", "v4", "v5"]);
  });

  it("a deploy.yaml the account replaced with a symlink is not followed by the agent: the next install fails naming it", async () => {
    const client = stack.client();
    // The account owns its release: it could point deploy.yaml at a file only root reads.
    const yaml = join(stack.rootOf("a1"), "web", "current", "deploy.yaml");
    await rm(yaml);
    await symlink("/etc/shadow", yaml);
    const data = await makeBundle([{ name: "deploy.yaml", content: "version: 1\n" }, { name: "VERSION", content: "v2" }]);
    const a = await client.upload("web", data);
    const d = await client.create({ requestId: "bundle-2", app: "web", environment: stack.environment, changeset: { version: "v2", artifact: { name: "web", digest: a.digest } } });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/^deploy\.yaml of the current release v5-\S+ is unreadable: ELOOP/);
  });
});
