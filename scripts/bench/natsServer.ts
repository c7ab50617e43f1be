// The bench's own nats-server: JetStream with `sync_interval: always` (the
// production setting, as the tests run), 127.0.0.1 on a free port, a temp
// store dir, the HTTP monitoring endpoint on 127.0.0.1 (/varz, /jsz: the
// JetStream work each shape costs, scripts/bench/monitor.ts), and optional
// extra config (e.g. a larger max_payload). The launcher is
// scripts/lib/natsServer.ts.
import { freePort, startNatsServer } from "../lib/natsServer.js";

export { findNatsServerBinary, freePort, natsServerVersion } from "../lib/natsServer.js";

/**
 * nats-server 2.15 caps every stream that sets no max_consumers of its own
 * at 1,000 consumers (jetstream.limits.default_max_consumers, default 1,000;
 * a stream's -1 counts as not set). DEPLOY_COMMANDS sets none and has one
 * consumer per agent, so on a stock 2.15 server agent 1,001 is refused
 * ("maximum consumers limit reached") and retries its start every second,
 * for ever: the 10,000-agent case cannot complete. The bench lifts the cap
 * (-1: no default) so that what lies beyond it can be measured; the product
 * must set DEPLOY_COMMANDS' max_consumers itself (docs/performance.md).
 */
export const BENCH_DEFAULT_MAX_CONSUMERS = -1;

export interface BenchNatsServer {
  url: string;
  pid: number;
  storeDir: string;
  /** "http://127.0.0.1:<port>": the server's monitoring endpoint. */
  monitorUrl: string;
  /** Stops the server and removes its temp store dir. */
  stop(): Promise<void>;
}

/** Starts nats-server; `configText` is added to the config file (e.g. "max_payload: 8MB"). */
export async function startBenchNatsServer(opts: { configText?: string } = {}): Promise<BenchNatsServer> {
  const monitorPort = await freePort();
  // BENCH_NATS_PROF=1: each bench server serves its CPU profile on a port of
  // its own, printed (go tool pprof -top <url>/debug/pprof/profile?seconds=30).
  const profPort = process.env.BENCH_NATS_PROF === "1" ? await freePort() : undefined;
  if (profPort !== undefined) process.stderr.write(`bench: nats-server profile http://127.0.0.1:${profPort}/debug/pprof\n`);
  // One config for every server of the bench: before, a configText replaced
  // the default config and with it sync_interval: always (the scale case ran
  // without it).
  const configText = [
    `http: 127.0.0.1:${monitorPort}`,
    "jetstream {",
    "  sync_interval: always",
    `  limits { default_max_consumers: ${BENCH_DEFAULT_MAX_CONSUMERS} }`,
    "}",
    opts.configText ?? "",
    profPort === undefined ? "" : `prof_port: ${profPort}`,
    "",
  ].join("\n");
  const server = await startNatsServer({ tempPrefix: "nats-bench-", configText });
  return {
    url: server.url,
    pid: server.pid,
    storeDir: server.storeDir,
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    stop: () => server.cleanup(),
  };
}
