/**
 * Launches a real nats-server (JetStream enabled, bound to 127.0.0.1 only)
 * for a test file: start, stop, SIGKILL, restart on the same port and store
 * dir, and cleanup. The launcher itself is scripts/lib/natsServer.ts, shared
 * with the scripts (bench, chaos, cluster, demo).
 */
import { startNatsServer as start, type NatsServerHandle, type NatsServerOptions } from "../../scripts/lib/natsServer.js";

export { findNatsServerBinary, freePort, type NatsServerHandle, type NatsServerOptions } from "../../scripts/lib/natsServer.js";

/**
 * Start a nats-server with `-a 127.0.0.1 -p <port> -js -sd <storeDir>`, wait
 * until it logs "Server is ready" (10 s), retrying once on a new port if the
 * picked port turned out to be taken.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  return await start({ tempPrefix: "nats-test-", ...opts });
}
