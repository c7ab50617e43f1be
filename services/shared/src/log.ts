// pino with the redaction every component shares: fixed messages, ids as
// fields, secrets never written.
import { pino, type Logger } from "pino";

export type { Logger };

export const REDACT_PATHS = [
  "token",
  "*.token",
  "password",
  "*.password",
  "authorization",
  "*.authorization",
  "env.*",
  "*.env.*",
  "credentials",
  "*.credentials",
  // nkey seeds (NATS credentials, command signing keys) and request headers.
  "seed",
  "*.seed",
  "*.*.seed",
  "nkeySeed",
  "*.nkeySeed",
  "*.*.token",
  "*.*.password",
  "headers.authorization",
  "*.headers.authorization",
  "metadata.authorization",
  "*.metadata.authorization",
  "secret",
  "*.secret",
];

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } });
}
