// The canonical proto3 JSON mapping (https://protobuf.dev/programming-guides/json/)
// of the messages deployctl prints with --json. The message is walked by
// the field types of proto/deploy/v1/deploy.proto as protobufjs reflects
// them (the same parser @grpc/proto-loader loads it with), so nothing is
// guessed from a value's shape:
//   google.protobuf.Timestamp  RFC 3339, Z-normalized, 0/3/6/9 fraction digits: "2026-12-02T01:02:03.456Z"
//   google.protobuf.Duration   seconds with an "s": "60s", "1.500s"
//   enums                      their names: "DEPLOYMENT_STATE_RUNNING"
//   64-bit integers            decimal strings: "42"
//   bytes                      base64
//   field names                lowerCamelCase (the default json_name)
//   maps                       JSON objects
// Fields holding their default value are left out (proto3 JSON's default),
// except where the field has presence (proto3 `optional`, oneof members,
// messages): `max_failures: 0` set by the server is printed.
import { join } from "node:path";
import protobuf from "protobufjs";
import { protoDir } from "../../../shared/src/proto.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The messages deployctl prints. */
export type PrintedType =
  | "deploy.v1.Deployment"
  | "deploy.v1.DeploymentEvent"
  | "deploy.v1.Artifact"
  | "deploy.v1.ListDeploymentsResponse"
  | "deploy.v1.ListAgentsResponse"
  | "deploy.v1.Agent"
  | "deploy.v1.GetReleaseResponse"
  | "deploy.v1.ListArtifactsResponse"
  | "deploy.v1.EnvironmentFreeze"
  | "deploy.v1.ListFreezesResponse"
  | "deploy.v1.EnvironmentPolicy"
  | "deploy.v1.ListEnvironmentPoliciesResponse";

const TIMESTAMP = ".google.protobuf.Timestamp";
const DURATION = ".google.protobuf.Duration";
const INT64 = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/** The range proto3 JSON allows: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z. */
const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;
/** ±10 000 years, as google/protobuf/duration.proto bounds it. */
const MAX_DURATION_SECONDS = 315_576_000_000n;

let root: protobuf.Root | undefined;

/** deploy.proto, parsed once (only --json needs it); google/protobuf imports come from protobufjs' bundled copies. */
function deployRoot(): protobuf.Root {
  if (!root) {
    root = protobuf.loadSync(join(protoDir(), "deploy", "v1", "deploy.proto"));
    root.resolveAll();
  }
  return root;
}

/** `message` (as @grpc/proto-loader decodes it: longs and enums as strings) in proto3 JSON. */
export function toProto3Json(typeName: PrintedType, message: object): JsonObject {
  return messageJson(deployRoot().lookupType(typeName), message);
}

function messageJson(type: protobuf.Type, message: object): JsonObject {
  const m = message as Record<string, unknown>;
  const out: JsonObject = {};
  // Declaration order: the order protoc's JSON printers use. Keys that are
  // not fields (proto-loader's oneof markers such as `_maxConcurrency`) are
  // not part of the message and are never printed.
  for (const field of type.fieldsArray) {
    const v = m[field.name];
    if (v === undefined || v === null) continue;
    if (field.map) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length > 0) out[field.name] = Object.fromEntries(entries.map(([k, x]) => [k, valueJson(field, x)]));
    } else if (field.repeated) {
      const items = v as unknown[];
      if (items.length > 0) out[field.name] = items.map((x) => valueJson(field, x));
    } else if (hasPresence(field) || !isDefault(field, v)) {
      out[field.name] = valueJson(field, v);
    }
  }
  return out;
}

function hasPresence(field: protobuf.Field): boolean {
  return field.partOf !== null || field.resolvedType instanceof protobuf.Type;
}

function isDefault(field: protobuf.Field, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return v === 0 || field.resolvedType.values[String(v)] === 0;
  if (typeof v === "string") return v === "" || (INT64.has(field.type) && v === "0");
  if (typeof v === "number") return v === 0 && !Object.is(v, -0);
  if (typeof v === "boolean") return !v;
  if (v instanceof Uint8Array) return v.length === 0;
  return INT64.has(field.type) && String(v) === "0"; // a Long
}

function valueJson(field: protobuf.Field, v: unknown): JsonValue {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) {
    if (t.fullName === TIMESTAMP) return timestampJson(v as SecondsNanos);
    if (t.fullName === DURATION) return durationJson(v as SecondsNanos);
    return messageJson(t, v as object);
  }
  if (t instanceof protobuf.Enum) return typeof v === "number" ? (t.valuesById[v] ?? v) : String(v);
  if (INT64.has(field.type)) return String(v);
  if (field.type === "bytes") return Buffer.from(v as Uint8Array).toString("base64");
  if (field.type === "float" || field.type === "double") {
    const n = Number(v);
    return Number.isFinite(n) ? n : String(n); // "NaN", "Infinity", "-Infinity"
  }
  return v as boolean | number | string;
}

export interface SecondsNanos {
  seconds?: string | number | { toString(): string } | null;
  nanos?: number | null;
}

function parts(v: SecondsNanos): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(String(v.seconds ?? 0)), nanos: Number(v.nanos ?? 0) };
}

/** ".456", ".456789", ".456789123" or "" for 0: the fewest of 0, 3, 6, 9 digits that are exact. */
function fraction(nanos: number): string {
  if (nanos === 0) return "";
  const nine = String(nanos).padStart(9, "0");
  return "." + (nanos % 1_000_000 === 0 ? nine.slice(0, 3) : nanos % 1000 === 0 ? nine.slice(0, 6) : nine);
}

export function timestampJson(v: SecondsNanos): string {
  const { seconds, nanos } = parts(v);
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw new RangeError(`Timestamp out of the range proto3 JSON allows: ${seconds}s ${nanos}ns`);
  }
  // Whole seconds from Date (years 0001..9999 print with 4 digits), the fraction exactly from nanos.
  return new Date(Number(seconds) * 1000).toISOString().slice(0, 19) + fraction(nanos) + "Z";
}

export function durationJson(v: SecondsNanos): string {
  const { seconds, nanos } = parts(v);
  const mixedSigns = (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0);
  if (seconds > MAX_DURATION_SECONDS || seconds < -MAX_DURATION_SECONDS || !Number.isInteger(nanos) || Math.abs(nanos) > 999_999_999 || mixedSigns) {
    throw new RangeError(`Duration out of the range proto3 JSON allows: ${seconds}s ${nanos}ns`);
  }
  const negative = seconds < 0n || nanos < 0;
  return `${negative ? "-" : ""}${negative ? -seconds : seconds}${fraction(Math.abs(nanos))}s`;
}
