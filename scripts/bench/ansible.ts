// The peer (issue 17, goal 6): Ansible running a no-op (`command: /bin/true`)
// on H inventory hosts, all ansible_connection=local, forks = H, timed from
// the ansible-playbook start to its exit. Skipped when ansible-playbook is
// not on PATH (docs/performance.md: apt-get install ansible-core).
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { tmpdir } from "node:os";
import { performance } from "node:perf_hooks";

export type AnsibleResult = { skipped: string } | { version: string; runs: { hosts: number; ms: number; ok: boolean; error?: string }[] };

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return join(dir, bin);
    } catch {
      // not here
    }
  }
  return undefined;
}

const run = (file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string }> =>
  new Promise((resolve, reject) =>
    execFile(file, args, { env, timeout: 10 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`.slice(0, 2000))) : resolve({ stdout }))),
  );

export async function runAnsible(hostCounts: number[]): Promise<AnsibleResult> {
  const bin = onPath("ansible-playbook");
  if (!bin) return { skipped: "ansible-playbook not on PATH" };
  const dir = await mkdtemp(join(tmpdir(), "bench-ansible-"));
  const env = { ...process.env, ANSIBLE_HOST_KEY_CHECKING: "False", ANSIBLE_RETRY_FILES_ENABLED: "False", ANSIBLE_LOCAL_TEMP: join(dir, "tmp"), ANSIBLE_NOCOLOR: "1" };
  try {
    const version = (await run(bin, ["--version"], env)).stdout.split("\n")[0] ?? "?";
    await writeFile(join(dir, "noop.yml"), "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: /bin/true\n");
    const runs: { hosts: number; ms: number; ok: boolean; error?: string }[] = [];
    for (const hosts of hostCounts) {
      const inventory = join(dir, `hosts-${hosts}.ini`);
      const lines = Array.from({ length: hosts }, (_, i) => `h${i} ansible_connection=local ansible_python_interpreter=${process.env.BENCH_ANSIBLE_PYTHON ?? "/usr/bin/python3"}`);
      await writeFile(inventory, `[all]\n${lines.join("\n")}\n`);
      const t0 = performance.now();
      try {
        await run(bin, ["-i", inventory, "-f", String(hosts), join(dir, "noop.yml")], env);
        runs.push({ hosts, ms: Math.round(performance.now() - t0), ok: true });
      } catch (err) {
        runs.push({ hosts, ms: Math.round(performance.now() - t0), ok: false, error: (err as Error).message });
      }
    }
    return { version, runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
