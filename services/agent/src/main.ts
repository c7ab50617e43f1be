#!/usr/bin/env node
// deploy-agent: pulls this VM's commands and applies them, at most once each.
// SIGTERM/SIGINT: stop pulling, let an in-flight apply finish within
// shutdownGraceMs; a second signal exits at once.
import { createLogger, ServerTooOldError } from "../../shared/src/index.js";
import { startAgent } from "./agent.js";
import { loadAgentConfig } from "./config.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadAgentConfig();
  } catch (err) {
    process.stderr.write(`deploy-agent: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger("agent", config.logLevel);
  const agent = await startAgent(config, log);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: sig }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal: sig }, "shutting down");
    agent.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

main().catch((err: unknown) => {
  if (err instanceof ServerTooOldError) {
    // An operator's error, not a bug: the message says what to do.
    process.stderr.write(`deploy-agent: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`deploy-agent: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
