// The bench's own nats-server: JetStream, 127.0.0.1 on a free port, a temp
// store dir. A reduced copy of test/helpers/nats-server.ts (scripts cannot
// import test/), plus an optional config file (e.g. a larger max_payload).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface BenchNatsServer {
  url: string;
  pid: number;
  storeDir: string;
  stop(): Promise<void>;
}

export function findNatsServerBinary(): string {
  const fromEnv = process.env["NATS_SERVER_BIN"];
  if (fromEnv) return fromEnv;
  for (const dir of (process.env["PATH"] ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error("nats-server not found: set NATS_SERVER_BIN or put nats-server on PATH");
}

export function natsServerVersion(): string {
  try {
    return execFileSync(findNatsServerBinary(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") return reject(new Error("no address"));
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Starts nats-server -js; `configText` goes into a -c file (e.g. "max_payload: 8MB"). */
export async function startBenchNatsServer(opts: { configText?: string } = {}): Promise<BenchNatsServer> {
  const bin = findNatsServerBinary();
  const dir = await mkdtemp(join(tmpdir(), "nats-bench-"));
  const port = await freePort();
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir];
  if (opts.configText) {
    const conf = join(dir, "server.conf");
    await writeFile(conf, opts.configText);
    args.unshift("-c", conf);
  }
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let seen = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server not ready in 10 s:\n${seen}`)), 10_000);
    const onData = (b: Buffer): void => {
      if (seen.length < 64 * 1024) seen += b.toString();
      if (seen.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${String(code)}):\n${seen}`));
    });
  });
  // Keep draining its output so it never blocks on a full pipe.
  child.stdout.resume();
  child.stderr.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    storeDir: dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      live.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
