// deployctl on a real terminal (tmux panes, 200x50): the live view, Ctrl-C
// while following (deploy and watch), and shell completion typed with Tab in
// interactive bash and zsh. Against a real stack: nats-server, coordinator
// and agents from dist/.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, Tmux, gatedBundle, runCli, shQuote } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

const hasZsh = spawnSync("zsh", ["--version"]).status === 0;

describe.skipIf(!Tmux.available())("deployctl on a terminal", () => {
  let stack: Stack;
  let work: string;
  let env: Record<string, string>;
  let tmux: Tmux;
  let scripts = 0;

  /** A script run in a terminal: deployctl with the test's environment, then its exit status on the screen. */
  async function terminalScript(lines: string[]): Promise<string> {
    const file = join(work, `script-${++scripts}.sh`);
    const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shQuote(v)}`);
    await writeFile(file, ["#!/bin/bash", ...exports, ...lines, ""].join("\n"), { mode: 0o755 });
    return `bash ${shQuote(file)}`;
  }
  const deployctl = (args: string): string => `node ${shQuote(CLI)} ${args}`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "deployctl-tty-"));
    tmux = new Tmux(join(work, "tmux.sock"));
    stack = await Stack.start({ agents: ["t1", "t2"] });
    env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: work,
      XDG_STATE_HOME: join(work, "state"),
      DEPLOY_COORDINATOR: stack.address,
    };
  });
  afterAll(async () => {
    tmux?.kill();
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("Ctrl-C in the live view of deploy and of watch prints how to resume and exits 130; the deployment goes on", async () => {
    const gate = join(work, "gate");
    const bundle = await gatedBundle(join(work, "gated"), gate);

    // deploy follows by default: the live view, redrawn in place.
    tmux.start("deploy", await terminalScript([deployctl(`deploy ${shQuote(bundle)} --app web --env prod --version v1`), 'echo "EXIT=$?"']));
    await tmux.waitFor("deploy", /TARGET\s+STATE\s+ELAPSED\s+LAST OUTPUT[\s\S]*APPLYING\s+\S+\s+\[before_install\] waiting for the gate/);
    const id = (await tmux.waitFor("deploy", /deployment (d-\S+):/))[1]!;
    expect(tmux.screen("deploy")).toMatch(new RegExp(`${id}\\s+web v1 → prod\\s+RUNNING`));
    tmux.keys("deploy", "C-c");
    const deployExit = await tmux.waitFor("deploy", /EXIT=(\d+)/);
    expect(deployExit[1], tmux.screen("deploy")).toBe("130");
    expect(tmux.screen("deploy")).toContain(`deployctl: stopped following ${id}; the deployment goes on (nothing was cancelled). Resume with: deployctl watch ${id}`);

    // watch, on the same deployment (still waiting for the gate).
    tmux.start("watch", await terminalScript([deployctl(`watch ${id}`), 'echo "EXIT=$?"']));
    await tmux.waitFor("watch", /TARGET\s+STATE\s+ELAPSED\s+LAST OUTPUT[\s\S]*APPLYING/);
    tmux.keys("watch", "C-c");
    const watchExit = await tmux.waitFor("watch", /EXIT=(\d+)/);
    expect(watchExit[1], tmux.screen("watch")).toBe("130");
    expect(tmux.screen("watch")).toContain(`Resume with: deployctl watch ${id}`);

    // Nothing was cancelled: let it go on, and watch it end on the terminal.
    await writeFile(gate, "");
    tmux.start("end", await terminalScript([deployctl(`watch ${id}`), 'echo "EXIT=$?"']));
    const endExit = await tmux.waitFor("end", /EXIT=(\d+)/);
    const screen = tmux.screen("end");
    expect(endExit[1], screen).toBe("0");
    // The live view gave way to the summary.
    expect(screen).toMatch(new RegExp(`deployment ${id}\\s+SUCCEEDED`));
    expect(screen).toMatch(/t1\s+SUCCEEDED/);
    expect(screen).toMatch(/t2\s+SUCCEEDED/);
    const d = await runCli(["get", id, "--json"], { env });
    expect((JSON.parse(d.stdout) as { state: string }).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("the live view says when it waits for a promote or a resume, and what to run; then follows to the end", async () => {
    tmux.start("canary", await terminalScript([deployctl("deploy --executable --app web --env prod --version v-canary --canary 1 --max-concurrency 2"), 'echo "EXIT=$?"']));
    const id = (await tmux.waitFor("canary", /deployment (d-\S+):/))[1]!;
    await tmux.waitFor("canary", new RegExp(`RUNNING \\(awaiting promotion\\)[\\s\\S]*canary wave of 1 succeeded; waiting for a promote \\(deployctl promote ${id}\\)`));
    const paused = await runCli(["pause", id, "--reason", "lunch"], { env });
    expect(paused.code, paused.stderr).toBe(0);
    await tmux.waitFor("canary", /RUNNING \(paused\)[\s\S]*paused by anonymous \(development mode\): lunch/);
    expect((await runCli(["promote", id], { env })).code).toBe(0);
    await tmux.waitFor("canary", /promoted by anonymous \(development mode\): going on to every target/);
    expect((await runCli(["resume", id], { env })).code).toBe(0);
    const exit = await tmux.waitFor("canary", /EXIT=(\d+)/);
    const screen = tmux.screen("canary");
    expect(exit[1], screen).toBe("0");
    expect(screen).toMatch(new RegExp(`deployment ${id}\\s+SUCCEEDED`));
    expect(screen).toContain("canary t1: promoted by anonymous (development mode)");
  });

  it("bash completion: commands, flags and values complete with Tab in an interactive bash", async () => {
    // A deployctl on PATH, as an installed one would be. (capture-pane -J
    // keeps trailing blanks: a completed word is followed by one or more.)
    const bin = join(work, "bin");
    await writeFile(join(work, "bashrc"), [`PS1='$ '`, `source <(${deployctl("completion bash")})`, ""].join("\n"));
    spawnSync("mkdir", ["-p", bin]);
    await writeFile(join(bin, "deployctl"), `#!/bin/sh\nexec node ${shQuote(CLI)} "$@"\n`, { mode: 0o755 });
    tmux.start("bash", `env PATH=${shQuote(`${bin}:${env.PATH}`)} bash --noprofile --rcfile ${shQuote(join(work, "bashrc"))} -i`);
    await tmux.waitFor("bash", /^\$ $/m);

    const complete = async (typed: string, expected: RegExp): Promise<void> => {
      tmux.keys("bash", "C-u");
      tmux.type("bash", typed);
      tmux.keys("bash", "Tab");
      await tmux.waitFor("bash", expected, 20_000);
    };
    await complete("deployctl dep", /^\$ deployctl deploy +$/m);
    await complete("deployctl deploy --exec", /^\$ deployctl deploy --executable +$/m);
    await complete("deployctl list --state fa", /^\$ deployctl list --state failed +$/m);
    await complete("deployctl completion z", /^\$ deployctl completion zsh +$/m);
    // Two matches: a second Tab lists them.
    tmux.keys("bash", "C-u");
    tmux.type("bash", "deployctl deploy --max-");
    tmux.keys("bash", "Tab", "Tab");
    await tmux.waitFor("bash", /--max-concurrency\s+--max-failures/, 20_000);
  });

  it.skipIf(!hasZsh)("zsh completion: the same, in an interactive zsh with compinit", async () => {
    const zdot = join(work, "zdot");
    spawnSync("mkdir", ["-p", zdot]);
    await writeFile(join(zdot, ".zshrc"), [`PS1='%% '`, "autoload -U compinit && compinit -u", `source <(${deployctl("completion zsh")})`, ""].join("\n"));
    tmux.start("zsh", `env ZDOTDIR=${shQuote(zdot)} zsh -i`);
    await tmux.waitFor("zsh", /^% $/m);

    const complete = async (typed: string, expected: RegExp): Promise<void> => {
      tmux.keys("zsh", "C-u");
      tmux.type("zsh", typed);
      tmux.keys("zsh", "Tab");
      await tmux.waitFor("zsh", expected, 20_000);
    };
    await complete("deployctl dep", /^% deployctl deploy +$/m);
    await complete("deployctl deploy --exec", /^% deployctl deploy --executable +$/m);
    await complete("deployctl list --state fa", /^% deployctl list --state failed +$/m);
    await complete("deployctl agents --js", /^% deployctl agents --json +$/m);
    await complete("deployctl completion ", /bash\s+zsh/);
  });
});
