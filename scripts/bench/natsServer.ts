// The bench's own nats-server: JetStream, 127.0.0.1 on a free port, a temp
// store dir, an optional config file (e.g. a larger max_payload). The
// launcher is scripts/lib/natsServer.ts.
import { startNatsServer } from "../lib/natsServer.js";

export { findNatsServerBinary, freePort, natsServerVersion } from "../lib/natsServer.js";

export interface BenchNatsServer {
  url: string;
  pid: number;
  storeDir: string;
  /** Stops the server and removes its temp store dir. */
  stop(): Promise<void>;
}

/** Starts nats-server -js; `configText` goes into a -c file (e.g. "max_payload: 8MB"). */
export async function startBenchNatsServer(opts: { configText?: string } = {}): Promise<BenchNatsServer> {
  const server = await startNatsServer({ tempPrefix: "nats-bench-", configText: opts.configText || undefined });
  return {
    url: server.url,
    pid: server.pid,
    storeDir: server.storeDir,
    stop: () => server.cleanup(),
  };
}
