// Exit codes and the one-line error format. Scripts rely on the codes:
// 0 succeeded, 1 failed / timed out / cancelled (or an unexpected error),
// 2 usage or validation error, 3 the coordinator cannot be reached, 4 the
// environment is frozen (nothing created),
// 130 interrupted (Ctrl-C while following; the deployment goes on),
// 141 the reader of stdout went away (`deployctl watch <id> | head`).
import { status, type ServiceError } from "@grpc/grpc-js";
import { EnvironmentFrozenError } from "../../shared/src/errors.js";

export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  /** The environment is frozen (FreezeEnvironment): nothing was created; a pipeline may skip its deploy on it. */
  FROZEN: 4,
  INTERRUPTED: 130,
  /** 128 + SIGPIPE (13): what a shell reports for `seq 1000000 | head -n 1`'s seq (output.ts says why). */
  OUTPUT_CLOSED: 141,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error deployctl reports itself, with the exit code it ends with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CliError";
  }
}

/** Bad arguments or a bad bundle, found before anything was sent. */
export class UsageError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT.USAGE, options);
    this.name = "UsageError";
  }
}

/** Retries of UNAVAILABLE / DEADLINE_EXCEEDED ran out. */
export class UnreachableError extends CliError {
  constructor(
    readonly last: ServiceError,
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly address: string,
  ) {
    super(
      `${statusLine(last)} (coordinator ${address}; ${attempts} attempt${attempts === 1 ? "" : "s"} in ${(elapsedMs / 1000).toFixed(1)} s)`,
      EXIT.UNREACHABLE,
      { cause: last },
    );
    this.name = "UnreachableError";
  }
}

/** Ctrl-C while following: not a failure of the deployment. */
export class InterruptedError extends CliError {
  constructor(readonly deploymentId: string) {
    super(`stopped following ${deploymentId}`, EXIT.INTERRUPTED);
    this.name = "InterruptedError";
  }
}

/**
 * A check deployctl makes before sending anything costly (deploy looks at
 * the agents before uploading): named with the gRPC status the coordinator
 * would answer, so the line reads like the server's own refusal.
 */
export class PreflightError extends CliError {
  constructor(
    readonly code: "INVALID_ARGUMENT" | "FAILED_PRECONDITION",
    details: string,
  ) {
    super(`${code}: ${details}`, EXIT.USAGE);
    this.name = "PreflightError";
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

export function codeName(code: status): string {
  return (status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/**
 * Calls failing with these may be retried: every mutating call carries an
 * idempotency key. ABORTED is the coordinator's "retry" (it could not record
 * the request in time: writers racing, or NATS unreachable behind it): a
 * deploy sent during a 3 s NATS outage got it after 5 s and exited 1 while
 * the same request id succeeded on the next try (test/deployctl-retry.test.ts).
 */
const RETRYABLE = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.ABORTED]);
/** The server refused the request as given: the user must change it. */
const USAGE_CODES = new Set<status>([
  status.INVALID_ARGUMENT,
  status.ALREADY_EXISTS,
  status.FAILED_PRECONDITION,
  status.NOT_FOUND,
  status.OUT_OF_RANGE,
  status.RESOURCE_EXHAUSTED,
  // A missing, wrong or under-privileged token: the user must bring another.
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
]);

export function isRetryable(err: unknown): err is ServiceError {
  return isServiceError(err) && RETRYABLE.has(err.code);
}

export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode;
  if (isServiceError(err)) {
    if (err.code === status.FAILED_PRECONDITION && (err.metadata?.get(EnvironmentFrozenError.TRAILER).length ?? 0) > 0) return EXIT.FROZEN;
    if (USAGE_CODES.has(err.code)) return EXIT.USAGE;
    if (RETRYABLE.has(err.code)) return EXIT.UNREACHABLE;
  }
  return EXIT.FAILED;
}

/** "<GRPC_CODE>: <details>" on one line. */
export function statusLine(err: ServiceError): string {
  return `${codeName(err.code)}: ${oneLine(err.details || err.message)}`;
}

/** One line: `deployctl: <GRPC_CODE>: <details>`; the server's details start with the field they are about. */
export function formatError(err: unknown): string {
  if (err instanceof CliError) return `deployctl: ${err.message}`;
  if (isServiceError(err)) return `deployctl: ${statusLine(err)}`;
  if (err instanceof Error) return `deployctl: ${oneLine(err.message)}`;
  return `deployctl: ${oneLine(String(err))}`;
}

function oneLine(s: string): string {
  // grpc-js appends an empty "Resolution note:" to connection errors.
  return s.replace(/\s*\n\s*/g, " ").replace(/\.?\s*Resolution note:\s*$/, "").trim();
}
