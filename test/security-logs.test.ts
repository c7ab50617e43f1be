// Logs never hold tokens, seeds, credentials or secret hook environment
// values: the shared pino redaction, checked on the shapes our code logs.
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACT_PATHS, type Logger } from "../services/shared/src/log.js";

function capture(): { log: Logger; text: () => string } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, dest), text: () => chunks.join("") };
}

describe("log redaction", () => {
  it("tokens, seeds, passwords, authorization headers and hook env values are censored", () => {
    const { log, text } = capture();
    const secrets = ["tok-123-secret", "SUAGEXAMPLESEEDSECRET", "hunter2", "Bearer abc-secret", "env-secret-value"];
    log.info({ token: secrets[0] }, "a");
    log.info({ grpc: { token: secrets[0] }, nats: { seed: secrets[1], nkeySeed: secrets[1] } }, "b");
    log.info({ signing: { seed: secrets[1] }, config: { signing: { seed: secrets[1] } } }, "c");
    log.info({ password: secrets[2], db: { password: secrets[2] }, credentials: secrets[2] }, "d");
    log.info({ metadata: { authorization: secrets[3] }, req: { headers: { authorization: secrets[3] } } }, "e");
    log.info({ hook: "start", env: { API_KEY: secrets[4] }, run: { env: { DB_PASSWORD: secrets[4] } } }, "f");
    log.info({ seed: secrets[1], secret: secrets[4], child: { secret: secrets[4] } }, "g");
    const out = text();
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out.match(/\[redacted\]/g)!.length).toBeGreaterThanOrEqual(14);
    // Ids and other fields stay readable.
    log.info({ deploymentId: "d-1", agentId: "a1" }, "h");
    expect(text()).toContain('"deploymentId":"d-1"');
  });
});
