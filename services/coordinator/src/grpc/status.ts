// The one mapping from our error codes to gRPC status codes.
import { status, type ServiceError } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { DeployError, EnvironmentFrozenError, PairBusyError, WatchesFullError, type ErrorCode } from "../../../shared/src/index.js";

const CODES: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  NOT_FOUND: status.NOT_FOUND,
  UNAVAILABLE: status.UNAVAILABLE,
  CONFLICT: status.ABORTED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  INTERNAL: status.INTERNAL,
};

export function toServiceError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (err instanceof DeployError) {
    if ("field" in err && typeof err.field === "string") metadata.set("field", err.field);
    if (err instanceof PairBusyError) metadata.set(PairBusyError.TRAILER, err.activeDeploymentId);
    if (err instanceof EnvironmentFrozenError) metadata.set(EnvironmentFrozenError.TRAILER, err.environment);
    if (err instanceof WatchesFullError) metadata.set(WatchesFullError.TRAILER, String(err.max));
    return { code: CODES[err.code], details: err.message, metadata };
  }
  // Unknown errors are most often NATS not answering (timeouts while it
  // restarts): a client may retry; details stay generic, the log has the rest.
  return { code: status.UNAVAILABLE, details: "the coordinator could not complete the call; retry", metadata };
}
