// Appends one event to DEPLOY_EVENTS. Every state change goes through here
// before anyone is told of it.
import { headers } from "@nats-io/transport-node";
import { JetStreamApiError, JetStreamApiCodes } from "@nats-io/jetstream";
import { ConflictError, UnavailableError } from "../errors.js";
import { eventBudget, EVENTS_MAX_MSG_SIZE, maxPayload, ResourceExhaustedError } from "../limits.js";
import { eventSubject, EVENT_SCHEMA, HDR_AGENT_ID, HDR_CANCEL_REQUESTED, HDR_DEPLOY_ID, HDR_KILL_REQUESTED, HDR_EVENT_TYPE } from "../names.js";
import { encode, makeEvent, type DeployEvent, type EventBody } from "../schemas.js";
import type { JsContext } from "./context.js";

export interface AppendOptions {
  /** "coordinator" or the agent id: the last subject token. */
  source: string;
  /**
   * Compare-and-set: the event is stored only if the last message on its
   * subject has this sequence (0: the subject is empty). Coordinators pass
   * the last coordinator sequence their decision was based on, so two
   * coordinators cannot both act on the same view.
   */
  expectLastSubjectSeq?: number;
  /** Nats-Msg-Id, for reports an agent may repeat. */
  msgId?: string;
  /** A coordinator decision made on a view with a cancel requested (sets HDR_CANCEL_REQUESTED). */
  cancelRequested?: boolean;
  /** ... and with kill_running (sets HDR_KILL_REQUESTED). */
  killRequested?: boolean;
}

/**
 * The server's refusal of a message over a stream limit with discard new:
 * "maximum messages per subject exceeded", "maximum bytes exceeded" (pinned
 * by test/limits.test.ts; the client has no constant for it).
 */
const STREAM_LIMIT_EXCEEDED = 10077;

/** Appends `body` as an event made now; the stream sequence it got. */
export function appendEvent(ctx: Pick<JsContext, "js"> & Partial<Pick<JsContext, "nc">>, deploymentId: string, body: EventBody, opts: AppendOptions): Promise<number> {
  return appendMadeEvent(ctx, makeEvent(deploymentId, body), opts);
}

/** Appends an event made by the caller (who keeps it: CreateDeployment folds its created event without reading it back). */
export async function appendMadeEvent(ctx: Pick<JsContext, "js"> & Partial<Pick<JsContext, "nc">>, event: DeployEvent, opts: AppendOptions): Promise<number> {
  const { deploymentId, type } = event;
  const h = headers();
  h.set(HDR_DEPLOY_ID, deploymentId);
  h.set(HDR_EVENT_TYPE, type);
  if ("agentId" in event) h.set(HDR_AGENT_ID, event.agentId);
  if (opts.cancelRequested || event.type === "deployment.cancel_requested") h.set(HDR_CANCEL_REQUESTED, "true");
  if (opts.killRequested || (event.type === "deployment.cancel_requested" && event.kill === true)) h.set(HDR_KILL_REQUESTED, "true");
  h.set("Content-Type", `application/json; schema=${EVENT_SCHEMA}`);
  const payload = encode(event);
  const budget = eventBudget(ctx.nc);
  if (payload.length > budget) {
    // Refused by the server on every retry: say so once.
    throw new ResourceExhaustedError(`${type} for ${deploymentId} is ${payload.length} bytes, over the ${budget} bytes an event may take (DEPLOY_EVENTS max_msg_size ${EVENTS_MAX_MSG_SIZE}, server max_payload ${maxPayload(ctx.nc)})`);
  }
  try {
    const ack = await ctx.js.publish(eventSubject(deploymentId, opts.source), payload, {
      headers: h,
      ...(opts.msgId === undefined ? {} : { msgID: opts.msgId }),
      ...(opts.expectLastSubjectSeq === undefined ? {} : { expect: { lastSubjectSequence: opts.expectLastSubjectSeq } }),
    });
    return ack.seq;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
      throw new ConflictError(`another writer appended to ${deploymentId} first`, err);
    }
    // A limit of DEPLOY_EVENTS (messages per subject, bytes): refused again on
    // every retry, so not retryable; the caller reports it once.
    if (err instanceof JetStreamApiError && err.code === STREAM_LIMIT_EXCEEDED) {
      throw new ResourceExhaustedError(`${type} for ${deploymentId} refused by DEPLOY_EVENTS: ${err.message}`);
    }
    throw new UnavailableError(`could not append ${type} for ${deploymentId}`, err);
  }
}
