// A NATS client-protocol framer for the suite's proxy (lost-race-reply):
// splits a byte stream into whole protocol frames (a control line, and for
// PUB/HPUB/MSG/HMSG its payload), so a frame can be read and dropped
// without cutting another. Only the fields the proxy needs are parsed.
// https://docs.nats.io/reference/reference-protocols/nats-protocol

export interface Frame {
  /** The whole frame as received (forwarded unchanged unless dropped). */
  bytes: Buffer;
  /** Upper-cased operation: PUB, HPUB, MSG, HMSG, PING, INFO, ... */
  op: string;
  subject?: string;
  reply?: string;
  /** Header block of an HPUB/HMSG (text), empty otherwise. */
  headers: string;
}

const CRLF = Buffer.from("\r\n");

/** Number of payload bytes following the control line of `op` with `args`, or 0. */
function payloadSize(op: string, args: string[]): number {
  switch (op) {
    case "PUB":
    case "MSG":
    case "HPUB":
    case "HMSG":
      return Number(args.at(-1));
    default:
      return 0;
  }
}

export class NatsFramer {
  #buf: Buffer = Buffer.alloc(0);

  /** Frames completed by `chunk`; a partial frame waits for the next chunk. */
  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Frame[] = [];
    let at = 0;
    for (;;) {
      const eol = this.#buf.indexOf(CRLF, at);
      if (eol < 0) break;
      const line = this.#buf.toString("latin1", at, eol);
      const [rawOp = "", ...args] = line.trim().split(/\s+/);
      const op = rawOp.toUpperCase();
      const size = payloadSize(op, args);
      const end = size > 0 || op.endsWith("PUB") || op.endsWith("MSG") ? eol + 2 + size + 2 : eol + 2;
      if (end > this.#buf.length) break;
      const frame: Frame = { bytes: this.#buf.subarray(at, end), op, headers: "" };
      // PUB <subject> [reply] <size>; HPUB <subject> [reply] <hdr> <total>;
      // MSG <subject> <sid> [reply] <size>; HMSG <subject> <sid> [reply] <hdr> <total>.
      const fixed = (op === "PUB" ? 2 : op === "HPUB" ? 3 : op === "MSG" ? 3 : op === "HMSG" ? 4 : 0);
      if (fixed > 0) {
        frame.subject = args[0];
        if (args.length > fixed) frame.reply = args[op.startsWith("H") ? args.length - 3 : args.length - 2];
        if (op.startsWith("H")) frame.headers = this.#buf.toString("latin1", eol + 2, eol + 2 + Number(args.at(-2)));
      }
      out.push(frame);
      at = end;
    }
    this.#buf = at === this.#buf.length ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(at));
    return out;
  }
}
