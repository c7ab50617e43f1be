// Real processes for the fault suite: node services started from dist/ and
// nats-servers (one, or three in a JetStream cluster), each SIGKILLable and
// restartable with the same identity, port and store dir. The launcher is
// scripts/lib (childProc.ts, natsServer.ts).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChildProc } from "../lib/childProc.js";
import { freePorts, natsConfig, NatsServer } from "../lib/natsServer.js";

export { freePort } from "../lib/natsServer.js";

/** Output kept per process (written to <dir>/logs/ after a failed run). */
const MAX_LOG_CHARS = 200_000;

/** A node service whose start() waits for its ready line in the new instance's output. */
export class NodeService extends ChildProc {
  constructor(
    name: string,
    file: string,
    env: Record<string, string>,
    private readonly readyLine: string,
  ) {
    super(name, process.execPath, [file], { env: { LOG_LEVEL: "info", ...env }, maxLogChars: MAX_LOG_CHARS });
  }
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) return;
    await this.startAndWait(this.readyLine, timeoutMs);
  }
}

export class NatsNode extends NatsServer {
  constructor(name: string, port: number, confFile: string) {
    super(port, ["-c", confFile], { name, readyTimeoutMs: 15_000, maxLogChars: MAX_LOG_CHARS });
  }
  get name(): string {
    return this.proc.name;
  }
  /** A no-op if running. */
  override async start(): Promise<void> {
    if (this.running) return;
    await super.start();
  }
}

/**
 * One nats-server, or three in a JetStream cluster (no_advertise, so a
 * client behind the suite's proxy is not told the servers' own addresses).
 */
export async function startNats(dir: string, size: 1 | 3, maxPayload?: number): Promise<NatsNode[]> {
  const ports = await freePorts(size > 1 ? size * 2 : size);
  const nodes: NatsNode[] = [];
  for (let i = 0; i < size; i++) {
    const store = join(dir, `nats-${i + 1}`);
    await mkdir(store, { recursive: true });
    const routePorts = ports.slice(size);
    const config = natsConfig({
      serverName: `n${i + 1}`,
      port: ports[i]!,
      storeDir: store,
      ...(maxPayload === undefined ? {} : { maxPayload }),
      ...(size > 1 ? { cluster: { name: "chaos", port: routePorts[i]!, routes: routePorts.filter((_, j) => j !== i), noAdvertise: true } } : {}),
    });
    const conf = join(dir, `nats-${i + 1}.conf`);
    await writeFile(conf, config);
    nodes.push(new NatsNode(`nats-${i + 1}`, ports[i]!, conf));
  }
  await Promise.all(nodes.map((n) => n.start()));
  return nodes;
}
