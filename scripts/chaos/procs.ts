// Real processes for the fault suite: node services started from dist/ and
// nats-servers (one, or three in a JetStream cluster), each SIGKILLable and
// restartable with the same identity, port and store dir. Adapted from
// test/helpers/stack.ts (Proc) and test/helpers/nats-server.ts (after
// nats.js's nst/src/launcher.ts); scripts cannot import from test/.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Children still alive; SIGKILLed if the suite exits without cleanup. */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});

function spawnTracked(cmd: string, args: string[], env?: Record<string, string>): ChildProcess {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

const isRunning = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;

async function waitExit(c: ChildProcess | undefined): Promise<void> {
  if (!isRunning(c)) return;
  await new Promise<void>((res) => c.once("exit", () => res()));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const { port } = srv.address() as { port: number };
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** A process that keeps its last ~200 KB of output. */
abstract class Restartable {
  #child: ChildProcess | undefined;
  #out = "";
  /** Output of the current process instance only. */
  #current = "";
  kills = 0;

  constructor(readonly name: string) {}

  protected abstract command(): { cmd: string; args: string[]; env?: Record<string, string> };

  get running(): boolean {
    return isRunning(this.#child);
  }
  get pid(): number {
    return this.#child?.pid ?? -1;
  }
  logs(): string {
    return this.#out;
  }

  protected spawnIt(): void {
    const { cmd, args, env } = this.command();
    const child = spawnTracked(cmd, args, env);
    this.#current = "";
    const keep = (b: Buffer): void => {
      const t = b.toString();
      this.#out += t;
      if (this.#out.length > 200_000) this.#out = this.#out.slice(-150_000);
      if (this.#current.length < 100_000) this.#current += t;
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.#child = child;
  }

  /** Waits until the current process instance printed `text`. */
  async waitForOutput(text: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.#current.includes(text)) {
      if (!this.running) throw new Error(`${this.name} exited before "${text}":\n${this.#out.slice(-2000)}`);
      if (Date.now() > until) throw new Error(`${this.name}: no "${text}" in ${timeoutMs} ms:\n${this.#out.slice(-2000)}`);
      await sleep(25);
    }
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const c = this.#child;
    if (!isRunning(c)) return;
    if (signal === "SIGKILL") this.kills++;
    c.kill(signal);
    await waitExit(c);
  }
}

export class NodeService extends Restartable {
  constructor(
    name: string,
    private readonly file: string,
    private readonly env: Record<string, string>,
    private readonly readyLine: string,
  ) {
    super(name);
  }
  protected command(): { cmd: string; args: string[]; env: Record<string, string> } {
    return {
      cmd: process.execPath,
      args: [this.file],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...this.env },
    };
  }
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) return;
    this.spawnIt();
    await this.waitForOutput(this.readyLine, timeoutMs);
  }
}

function natsBinary(): string {
  const fromEnv = process.env["NATS_SERVER_BIN"];
  if (fromEnv) return fromEnv;
  for (const dir of (process.env["PATH"] ?? "").split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, "nats-server"), fsConstants.X_OK);
      return join(dir, "nats-server");
    } catch {
      // next
    }
  }
  throw new Error("nats-server not found: set NATS_SERVER_BIN or put it on PATH");
}

export class NatsNode extends Restartable {
  constructor(
    name: string,
    readonly port: number,
    private readonly confFile: string,
  ) {
    super(name);
  }
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  protected command(): { cmd: string; args: string[] } {
    return { cmd: natsBinary(), args: ["-c", this.confFile] };
  }
  async start(): Promise<void> {
    if (this.running) return;
    this.spawnIt();
    await this.waitForOutput("Server is ready", 15_000);
  }
}

/**
 * One nats-server, or three in a JetStream cluster (no_advertise, so a
 * client behind the suite's proxy is not told the servers' own addresses).
 */
export async function startNats(dir: string, size: 1 | 3): Promise<NatsNode[]> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const clusterPorts = size > 1 ? await Promise.all(Array.from({ length: size }, () => freePort())) : [];
  const nodes: NatsNode[] = [];
  for (let i = 0; i < size; i++) {
    const store = join(dir, `nats-${i + 1}`);
    await mkdir(store, { recursive: true });
    const lines = [
      `server_name: n${i + 1}`,
      `listen: "127.0.0.1:${ports[i]}"`,
      `jetstream { store_dir: ${JSON.stringify(store)} }`,
    ];
    if (size > 1) {
      const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `"nats-route://127.0.0.1:${p}"`);
      lines.push(`cluster { name: chaos, listen: "127.0.0.1:${clusterPorts[i]}", no_advertise: true, routes: [${routes.join(", ")}] }`);
    }
    const conf = join(dir, `nats-${i + 1}.conf`);
    await writeFile(conf, lines.join("\n") + "\n");
    nodes.push(new NatsNode(`nats-${i + 1}`, ports[i]!, conf));
  }
  await Promise.all(nodes.map((n) => n.start()));
  return nodes;
}
