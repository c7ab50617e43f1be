// Message size limits, checked before anything is written (DESIGN.md
// invariant 4): a message over a server limit is refused by the server on
// every retry, so it is refused here once, with the limit named, instead.
import type { NatsConnection } from "@nats-io/transport-node";
import { DeployError } from "./errors.js";

/** DEPLOY_EVENTS' max_msg_size (infrastructure.ts): each event is small; the bound keeps one publisher from filling the disk with one message. */
export const EVENTS_MAX_MSG_SIZE = 256 * 1024;
/** nats-server's default max_payload, for a connection that has not said. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Headers and subject of our messages (a signature, ids, a schema name) stay well under this. */
export const ENVELOPE_BYTES = 1024;

/** A message that no server would accept: not retryable. */
export class ResourceExhaustedError extends DeployError {
  constructor(message: string) {
    super("RESOURCE_EXHAUSTED", message);
  }
}

export function maxPayload(nc: Pick<NatsConnection, "info"> | undefined): number {
  return nc?.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
}

/** The largest event payload DEPLOY_EVENTS and the server take. */
export function eventBudget(nc: Pick<NatsConnection, "info"> | undefined): number {
  return Math.min(maxPayload(nc), EVENTS_MAX_MSG_SIZE) - ENVELOPE_BYTES;
}

/** The largest KV value (a projection, a registry entry) the server takes. */
export function kvValueBudget(nc: Pick<NatsConnection, "info"> | undefined): number {
  return maxPayload(nc) - ENVELOPE_BYTES;
}
