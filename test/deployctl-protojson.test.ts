// deployctl --json's converter to the canonical proto3 JSON mapping, on
// messages as @grpc/proto-loader decodes them (longs and enums as strings,
// oneof markers, Timestamp/Duration as {seconds, nanos}).
import { describe, expect, it } from "vitest";
import { durationJson, timestampJson, toProto3Json } from "../services/deployctl/src/render/protoJson.js";

describe("proto3 JSON for deployctl --json", () => {
  it("Timestamps are Z-normalized RFC 3339 with 0, 3, 6 or 9 fraction digits", () => {
    const s = String(Date.UTC(2026, 11, 2, 1, 2, 3) / 1000);
    expect(timestampJson({ seconds: s, nanos: 0 })).toBe("2026-12-02T01:02:03Z");
    expect(timestampJson({ seconds: s, nanos: 456_000_000 })).toBe("2026-12-02T01:02:03.456Z");
    expect(timestampJson({ seconds: s, nanos: 456_789_000 })).toBe("2026-12-02T01:02:03.456789Z");
    expect(timestampJson({ seconds: s, nanos: 1 })).toBe("2026-12-02T01:02:03.000000001Z");
    expect(timestampJson({ seconds: Number(s) })).toBe("2026-12-02T01:02:03Z");
    expect(timestampJson({})).toBe("1970-01-01T00:00:00Z");
    expect(timestampJson({ seconds: "-62135596800" })).toBe("0001-01-01T00:00:00Z");
    expect(timestampJson({ seconds: "253402300799", nanos: 999_999_999 })).toBe("9999-12-31T23:59:59.999999999Z");
    expect(() => timestampJson({ seconds: "253402300800" })).toThrow(RangeError);
    expect(() => timestampJson({ seconds: "0", nanos: -1 })).toThrow(RangeError);
  });

  it("Durations are seconds with an s, 0, 3, 6 or 9 fraction digits", () => {
    expect(durationJson({ seconds: "60" })).toBe("60s");
    expect(durationJson({ seconds: "1", nanos: 500_000_000 })).toBe("1.500s");
    expect(durationJson({ seconds: "0", nanos: 1000 })).toBe("0.000001s");
    expect(durationJson({ seconds: "-1", nanos: -500_000_000 })).toBe("-1.500s");
    expect(durationJson({ seconds: "0", nanos: -1 })).toBe("-0.000000001s");
    expect(durationJson({})).toBe("0s");
    expect(() => durationJson({ seconds: "1", nanos: -1 })).toThrow(RangeError);
    expect(() => durationJson({ seconds: "315576000001" })).toThrow(RangeError);
  });

  it("walks a message by its field types: nested messages, repeated, maps, enums, int64, presence", () => {
    const deployment = {
      id: "d-1",
      message: "", // a default: left out
      cancelRequested: false, // a default: left out
      state: "DEPLOYMENT_STATE_RUNNING",
      lastSequence: "42",
      strategy: { maxConcurrency: 2, _maxConcurrency: "maxConcurrency", maxFailures: 0, _maxFailures: "maxFailures", applyTimeout: { seconds: "600", nanos: 0 } },
      targets: [{ agentId: "a1", state: 4, startedAt: { seconds: "1796174050", nanos: 250_000_000 }, rolledBack: false }],
      counts: [],
      createdAt: { seconds: "1796174050", nanos: 0 },
      notAField: "dropped",
    };
    expect(toProto3Json("deploy.v1.Deployment", deployment)).toEqual({
      id: "d-1",
      strategy: { maxConcurrency: 2, maxFailures: 0, applyTimeout: "600s" },
      state: "DEPLOYMENT_STATE_RUNNING",
      targets: [{ agentId: "a1", state: "TARGET_STATE_SUCCEEDED", startedAt: "2026-12-02T01:14:10.250Z" }],
      lastSequence: "42",
      createdAt: "2026-12-02T01:14:10Z",
    });
    const agents = { agents: [{ id: "a1", labels: { zone: "eu-1" }, currentReleases: {}, lastHeartbeat: { seconds: "1796174050" }, live: true }] };
    expect(toProto3Json("deploy.v1.ListAgentsResponse", agents)).toEqual({
      agents: [{ id: "a1", lastHeartbeat: "2026-12-02T01:14:10Z", live: true, labels: { zone: "eu-1" } }],
    });
    expect(toProto3Json("deploy.v1.Artifact", { name: "web", size: "631", createdAt: { seconds: "0", nanos: 5_000_000 } })).toEqual({
      name: "web",
      size: "631",
      createdAt: "1970-01-01T00:00:00.005Z",
    });
  });
});
