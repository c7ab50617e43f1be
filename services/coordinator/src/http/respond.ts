// JSON answers and the one mapping from our error codes to HTTP statuses.
import type { IncomingMessage, ServerResponse } from "node:http";
import { DeployError, PairBusyError, type ErrorCode } from "../../../shared/src/index.js";

const STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  NOT_FOUND: 404,
  UNAVAILABLE: 503,
  CONFLICT: 409,
  RESOURCE_EXHAUSTED: 413,
  INTERNAL: 500,
};

/** An HTTP-level refusal (authentication, method, size) with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers });
  res.end(text);
}

/** Status and body of an error; unknown errors (most often NATS not answering) stay generic, as in gRPC. */
export function errorResponse(err: unknown): { status: number; body: { error: string; code: string; field?: string; activeDeploymentId?: string } } {
  if (err instanceof HttpError) return { status: err.status, body: { error: err.message, code: String(err.status) } };
  if (err instanceof DeployError) {
    const field = "field" in err && typeof err.field === "string" ? err.field : undefined;
    const busy = err instanceof PairBusyError ? { activeDeploymentId: err.activeDeploymentId } : {};
    return { status: STATUS[err.code], body: { error: err.message, code: err.code, ...(field ? { field } : {}), ...busy } };
  }
  return { status: 503, body: { error: "the coordinator could not complete the request; retry", code: "UNAVAILABLE" } };
}

const MAX_BODY_BYTES = 16 * 1024;

/** A small JSON request body; refused unless sent as application/json (a cross-site form cannot). */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "send the body as application/json");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  if (size === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HttpError(400, "body must be a JSON object");
  return v as Record<string, unknown>;
}
