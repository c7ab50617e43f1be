// Errors with a stable `code`. The coordinator maps codes to gRPC status codes
// in one place (services/coordinator/src/grpc/status.ts); retryability is a
// property of the class, never a guess at the catch site.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "NOT_FOUND"
  | "UNAVAILABLE"
  | "CONFLICT"
  | "RESOURCE_EXHAUSTED"
  | "INTERNAL";

export class DeployError extends Error {
  readonly code: ErrorCode;
  /** Whether repeating the same operation may succeed. */
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** Input that fails validation; `field` names what is wrong, e.g. `strategy.max_concurrency`. */
export class ValidationError extends DeployError {
  readonly field: string;
  constructor(field: string, problem: string) {
    super("INVALID_ARGUMENT", `${field}: ${problem}`);
    this.field = field;
  }
}

export class AlreadyExistsError extends DeployError {
  constructor(message: string) {
    super("ALREADY_EXISTS", message);
  }
}

export class PreconditionError extends DeployError {
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
  }
}

/**
 * FAILED_PRECONDITION because another deployment holds the (app,
 * environment) pair: not terminal yet, or being created. Its id goes out
 * with the error (the gRPC trailer `active-deployment-id`, the HTTP body's
 * `activeDeploymentId`), so a client can wait for it, or cancel it, and
 * send the same request again (deployctl deploy --wait-active, --cancel-active).
 */
export class PairBusyError extends PreconditionError {
  /** The gRPC trailer that carries activeDeploymentId (docs/api.md). */
  static readonly TRAILER = "active-deployment-id";
  constructor(
    message: string,
    readonly activeDeploymentId: string,
  ) {
    super(message);
  }
}

/**
 * FAILED_PRECONDITION because the deployment's environment is frozen
 * (FreezeEnvironment). The environment goes out with the error (the gRPC
 * trailer `environment-frozen`), so a pipeline can tell a freeze from any
 * other refusal and skip its deploy (deployctl exits 4).
 */
export class EnvironmentFrozenError extends PreconditionError {
  /** The gRPC trailer that carries the environment (docs/api.md). */
  static readonly TRAILER = "environment-frozen";
  constructor(
    message: string,
    readonly environment: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends DeployError {
  constructor(message: string) {
    super("NOT_FOUND", message);
  }
}

/** A compare-and-set lost a race: reload and decide again. */
export class ConflictError extends DeployError {
  constructor(message: string, cause?: unknown) {
    super("CONFLICT", message, { cause, retryable: true });
  }
}

/** NATS or another dependency is not answering; the same call may work later. */
export class UnavailableError extends DeployError {
  constructor(message: string, cause?: unknown) {
    super("UNAVAILABLE", message, { cause, retryable: true });
  }
}

/** Every watch slot of the coordinator is taken (watches.max): a read still answers, a watch may later. */
export class WatchesFullError extends UnavailableError {
  /** The gRPC trailer that carries the limit (docs/api.md): a client may read instead of watching meanwhile. */
  static readonly TRAILER = "watches-full";
  constructor(
    message: string,
    readonly max: number,
  ) {
    super(message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
