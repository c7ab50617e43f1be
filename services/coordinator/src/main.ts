#!/usr/bin/env node
// deploy-coordinator: serves the gRPC API and drives rollouts.
// SIGTERM/SIGINT drain; a second one forces the exit. SIGHUP reads the agent
// bindings file again (docs/security.md).
import { createLogger, ServerTooOldError } from "../../shared/src/index.js";
import { loadCoordinatorConfig } from "./config.js";
import { startCoordinator } from "./coordinator.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadCoordinatorConfig();
  } catch (err) {
    process.stderr.write(`deploy-coordinator: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger("coordinator", config.logLevel);
  const coordinator = await startCoordinator(config, log);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: sig }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal: sig }, "shutting down");
    coordinator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", () => {
    try {
      coordinator.reloadBindings();
    } catch (err) {
      // The bindings in force stay: a half-written file never opens the fleet.
      log.error({ err: (err as Error).message }, "agent bindings not reloaded; the previous ones stay in force");
    }
  });
}

main().catch((err: unknown) => {
  if (err instanceof ServerTooOldError) {
    // An operator's error, not a bug: the message says what to do.
    process.stderr.write(`deploy-coordinator: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`deploy-coordinator: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
