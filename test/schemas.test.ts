// Message schemas: a v1 reader still reads a v1 message that gained fields
// (rolling upgrades), and refuses anything else with an error naming the field.
import { describe, expect, it } from "vitest";
import { MAX_DISPATCH_BATCH, ValidationError, parseAgentRecord, parseCommand, parseEvent } from "../services/shared/src/index.js";

const command = {
  schema: "deploy.command.v1",
  deploymentId: "d-1",
  agentId: "a1",
  app: "web",
  environment: "prod",
  changeset: { version: "v1" },
  applyTimeoutMs: 1000,
  issuedAt: new Date(0).toISOString(),
};

describe("schemas", () => {
  it("a v1 command or event that gained fields is still read (the extra fields are dropped)", () => {
    const c = parseCommand(JSON.stringify({ ...command, priority: 7, changeset: { version: "v1", notes: "x" } }));
    expect(c).toEqual(command);
    const e = parseEvent(JSON.stringify({ schema: "deploy.event.v1", deploymentId: "d-1", time: new Date(0).toISOString(), type: "target.started", agentId: "a1", hostLoad: 0.5 }));
    expect(e).toMatchObject({ type: "target.started", agentId: "a1" });
    expect(e).not.toHaveProperty("hostLoad");
  });

  it.each([
    [{ ...command, schema: "deploy.command.v2" }, "command.schema"],
    [{ ...command, agentId: "a.b" }, "command.agentId"],
    [{ ...command, applyTimeoutMs: -1 }, "command.applyTimeoutMs"],
    [{ ...command, changeset: { version: "v1", artifact: { name: "web", digest: "md5:x", size: 1 } } }, "command.changeset.artifact.digest"],
  ])("refuses %j naming %s", (msg, field) => {
    let err: unknown;
    try {
      parseCommand(JSON.stringify(msg));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it("a targets.dispatched event names one to MAX_DISPATCH_BATCH distinct agents", () => {
    const ev = (agentIds: unknown): string => JSON.stringify({ schema: "deploy.event.v1", deploymentId: "d-1", time: new Date(0).toISOString(), type: "targets.dispatched", agentIds });
    expect(parseEvent(ev(["a1", "a2"]))).toMatchObject({ type: "targets.dispatched", agentIds: ["a1", "a2"] });
    expect(() => parseEvent(ev([]))).toThrow(/event\.agentIds.*at least one/);
    expect(() => parseEvent(ev(["a1", "a1"]))).toThrow(/event\.agentIds.*repeat/);
    expect(() => parseEvent(ev(["a 1"]))).toThrow(/event\.agentIds/);
    expect(() => parseEvent(ev(Array.from({ length: MAX_DISPATCH_BATCH + 1 }, (_, i) => `a${i}`)))).toThrow(/event\.agentIds/);
  });

  it("refuses bytes that are not JSON, and unknown event types", () => {
    expect(() => parseCommand(new Uint8Array([0xff, 0x00]))).toThrow(ValidationError);
    expect(() => parseEvent(JSON.stringify({ schema: "deploy.event.v1", deploymentId: "d-1", time: new Date(0).toISOString(), type: "target.exploded" }))).toThrow(/event\.type/);
    expect(() => parseAgentRecord("{}")).toThrow(/agent\.schema/);
  });

  // Regression (found by test/fuzz-messages.test.ts): a map key that is not
  // a name produced an error naming "agent.currentReleases. " instead of a field.
  it("refuses an agent record whose map keys are not names, naming the map", () => {
    const agent = { schema: "deploy.agent.v1", id: "a1", environment: "prod", apps: ["web"], host: "h", version: "1", startedAt: new Date(0).toISOString() };
    expect(() => parseAgentRecord(JSON.stringify({ ...agent, currentReleases: { " ": "x" } }))).toThrow(/^agent\.currentReleases: key " " is not valid/);
    expect(() => parseAgentRecord(JSON.stringify({ ...agent, labels: { "": "x" } }))).toThrow(/^agent\.labels: key "" is not valid/);
    expect(parseAgentRecord(JSON.stringify({ ...agent, labels: { "team/owner": "ops" } })).labels).toEqual({ "team/owner": "ops" });
  });

  // Issue 16: an agent named "coordinator" would write under the coordinator's
  // event subject and be read as it. No message may carry that agent id.
  it("refuses the reserved agent id \"coordinator\" in agent records, commands and agent events", () => {
    const agent = { schema: "deploy.agent.v1", id: "coordinator", environment: "prod", apps: ["web"], host: "h", version: "1", startedAt: new Date(0).toISOString() };
    expect(() => parseAgentRecord(JSON.stringify(agent))).toThrow(/^agent\.id: "coordinator" is reserved/);
    const started = { schema: "deploy.event.v1", deploymentId: "d-1", time: new Date(0).toISOString(), type: "target.started", agentId: "coordinator" };
    expect(() => parseEvent(JSON.stringify(started))).toThrow(/^event\.agentId: "coordinator" is reserved/);
  });
});
