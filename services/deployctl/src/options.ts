// Option values: parsed and checked here, so a bad value is a usage error
// (exit 2) before anything is sent; and the options every command shares.
import { readFileSync } from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { Client, DEFAULT_CLIENT_OPTIONS, type ClientOptions } from "./client.js";
import { UsageError } from "./errors.js";
import { TOKEN_RULE, isToken } from "../../shared/src/names.js";
import { looksLikePercent, parsePercent, type Amount } from "../../shared/src/amounts.js";
import { ValidationError } from "../../shared/src/errors.js";
import { parseSelector } from "../../shared/src/selector.js";

export const DEFAULT_COORDINATOR = "127.0.0.1:50051";

export interface CommonOptions {
  json?: boolean;
  coordinator?: string;
  token?: string;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/** --json and --coordinator on every command (so they may follow the command name). */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option("--json", "machine-readable output: one JSON document on stdout (proto3 JSON mapping); progress lines go to stderr")
    .option("--coordinator <host:port>", `coordinator gRPC address (env DEPLOY_COORDINATOR, default ${DEFAULT_COORDINATOR})`, parseAddress)
    .option("--token <token>", "bearer token (env DEPLOY_TOKEN; prefer the env var: arguments show in ps)")
    .option("--tls", "connect with TLS, trusting the system CAs (env DEPLOY_TLS=1; implied by --ca or --cert)")
    .option("--ca <file>", "PEM CA certificate(s) to trust for the coordinator's TLS certificate (env DEPLOY_CA)")
    .option("--cert <file>", "PEM client certificate, when the coordinator requires one (env DEPLOY_CLIENT_CERT)")
    .option("--key <file>", "PEM private key of --cert (env DEPLOY_CLIENT_KEY)");
}

export function parseAddress(v: string): string {
  if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(v) || Number(v.slice(v.lastIndexOf(":") + 1)) > 65535) {
    throw new InvalidArgumentError(`"${v}" is not host:port`);
  }
  return v;
}

export function intOption(min: number, max = 2 ** 31 - 1): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

/**
 * App and environment names are NATS subject tokens: checked here so that a
 * bad one is refused before the bundle is uploaded under its name.
 */
export function tokenOption(v: string): string {
  if (!isToken(v)) throw new InvalidArgumentError(`"${v}" is not valid: use ${TOKEN_RULE}`);
  return v;
}

/**
 * A count or a percentage of the targets: "3" → {count: 3}, "10%" →
 * {percent: 10}. `min` bounds both (1 for --max-concurrency, 0 for
 * --max-failures); a percentage is at most 100%.
 */
export function amountOption(min: number): (v: string) => Amount {
  const count = intOption(min);
  return (v) => {
    if (!looksLikePercent(v)) return { count: count(v) };
    try {
      return { percent: parsePercent(v.trim(), "value", min) };
    } catch (err) {
      throw new InvalidArgumentError(err instanceof ValidationError ? err.message.replace(/^value: /, "") : String(err));
    }
  };
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The coordinator refuses strategy durations longer than this (requests.ts). */
export const MAX_STRATEGY_DURATION_MS = 7 * 24 * 3_600_000;

/**
 * A duration as deploy.yaml's hook timeouts write it: "90s", "10m",
 * "1h30m", "500ms" → milliseconds, from 1 ms to 7 days (168h), the range
 * the coordinator accepts for strategy durations.
 */
export function durationOption(v: string): number {
  const ms = parseDurationText(v, /(\d+(?:\.\d+)?)(ms|s|m|h)/gy, "90s, 10m or 1h30m");
  if (ms > MAX_STRATEGY_DURATION_MS) throw new InvalidArgumentError("must be at most 168h (7 days)");
  return ms;
}

/** A policy's least soak: durationOption's units and days ("2h", "1d"), up to 30 days as the coordinator allows. */
export function policySoakOption(v: string): number {
  const ms = parseDurationText(v, /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy, "30m, 2h or 1d");
  if (ms < 1000 || ms > 30 * DURATION_UNITS_MS["d"]!) throw new InvalidArgumentError("must be from 1s to 30d");
  return ms;
}

/** A freeze's length: durationOption's units and days ("2h", "3d", "1d12h"), up to 366 days as the coordinator allows. */
export function freezeDurationOption(v: string): number {
  const ms = parseDurationText(v, /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy, "30m, 2h or 3d");
  if (ms > 366 * DURATION_UNITS_MS["d"]!) throw new InvalidArgumentError("must be at most 366d (leave --for out for a freeze until unfrozen)");
  return ms;
}

function parseDurationText(v: string, re: RegExp, examples: string): number {
  const text = v.trim();
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (text === "" || matched !== text.length) throw new InvalidArgumentError(`"${v}" is not a duration such as ${examples}`);
  const ms = Math.round(total);
  if (ms < 1) throw new InvalidArgumentError("must be longer than 0");
  return ms;
}

/** An absolute time (ISO-8601 with a zone, e.g. 2026-12-28T08:00:00Z) as ms. */
export function timeOption(v: string): number {
  const ms = Date.parse(v);
  if (Number.isNaN(ms) || !/(Z|[+-]\d\d:?\d\d)$/i.test(v.trim())) throw new InvalidArgumentError(`"${v}" is not a time such as 2026-12-28T08:00:00Z (ISO-8601, with its zone)`);
  return ms;
}

/** A label selector, checked here (exit 2 before anything is sent); sent as given, the coordinator records its canonical form. */
export function selectorOption(v: string): string {
  try {
    parseSelector(v, "selector");
  } catch (err) {
    throw new InvalidArgumentError(err instanceof ValidationError ? err.message.replace(/^selector: /, "") : String(err));
  }
  return v;
}

/** "a,b" → ["a", "b"]. */
export function listOption(v: string): string[] {
  const items = v.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new InvalidArgumentError(`"${v}" has an empty item`);
  return items;
}

export const DEPLOYMENT_STATES = ["pending", "running", "succeeded", "failed", "cancelled"];

/** "running", "RUNNING" or "DEPLOYMENT_STATE_RUNNING" → "DEPLOYMENT_STATE_RUNNING". */
export function parseDeploymentState(v: string): string {
  const s = v.trim().toLowerCase().replace(/^deployment_state_/, "");
  if (!DEPLOYMENT_STATES.includes(s)) throw new InvalidArgumentError(`"${v}" is not one of ${DEPLOYMENT_STATES.join(", ")}`);
  return `DEPLOYMENT_STATE_${s.toUpperCase()}`;
}

const TARGET_STATES = ["pending", "dispatched", "applying", "succeeded", "failed", "timed_out", "cancelled", "skipped"];

export function parseTargetState(v: string): string {
  const s = v.trim().toLowerCase().replace(/^target_state_/, "").replace("-", "_");
  if (!TARGET_STATES.includes(s)) throw new InvalidArgumentError(`"${v}" is not one of ${TARGET_STATES.join(", ")}`);
  return `TARGET_STATE_${s.toUpperCase()}`;
}

/** Deployment ids are subject tokens; checked here too because one names the state file. */
export function parseDeploymentId(v: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a deployment id`);
  return v;
}

function envMs(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: "${v}" is not a number of milliseconds`);
  return Number(v);
}

export function coordinatorAddress(o: CommonOptions): string {
  if (o.coordinator) return o.coordinator;
  const env = process.env.DEPLOY_COORDINATOR;
  if (env) {
    try {
      return parseAddress(env);
    } catch (err) {
      throw new UsageError(`DEPLOY_COORDINATOR: ${(err as Error).message}`);
    }
  }
  return DEFAULT_COORDINATOR;
}

/**
 * The client for a command. DEPLOYCTL_CALL_TIMEOUT_MS and
 * DEPLOYCTL_RETRY_BUDGET_MS tune the deadline of one call and the time its
 * retries may take (defaults 15 s and 20 s).
 */
/** --token/--tls/--ca/--cert/--key, each falling back to its env var. */
export function securityOptions(o: CommonOptions): Pick<ClientOptions, "token" | "tls"> {
  const token = o.token ?? process.env.DEPLOY_TOKEN ?? "";
  const ca = o.ca ?? process.env.DEPLOY_CA ?? "";
  const cert = o.cert ?? process.env.DEPLOY_CLIENT_CERT ?? "";
  const key = o.key ?? process.env.DEPLOY_CLIENT_KEY ?? "";
  if (Boolean(cert) !== Boolean(key)) throw new UsageError("--cert and --key go together");
  const tls = Boolean(o.tls) || ["1", "true"].includes(process.env.DEPLOY_TLS ?? "") || Boolean(ca) || Boolean(cert);
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  return {
    ...(token ? { token } : {}),
    ...(tls ? { tls: { ...(ca ? { ca: read(ca, "--ca") } : {}), ...(cert ? { cert: read(cert, "--cert"), key: read(key, "--key") } : {}) } } : {}),
  };
}

export function clientFor(o: CommonOptions): Client {
  const opts: ClientOptions = {
    ...DEFAULT_CLIENT_OPTIONS,
    ...securityOptions(o),
    address: coordinatorAddress(o),
    callTimeoutMs: envMs("DEPLOYCTL_CALL_TIMEOUT_MS", DEFAULT_CLIENT_OPTIONS.callTimeoutMs),
    retryBudgetMs: envMs("DEPLOYCTL_RETRY_BUDGET_MS", DEFAULT_CLIENT_OPTIONS.retryBudgetMs),
  };
  return new Client(opts);
}

/** Runs `fn` with a client of the coordinator, closed after. */
export async function withClient<T>(o: CommonOptions, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = clientFor(o);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
