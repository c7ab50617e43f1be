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
];

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } });
}
