// The coordinator's gRPC API through stock tools, as an operator reaches it:
// the pinned grpcurl (scripts/tools.sh) against a real stack, with no .proto
// at hand, so every call depends on server reflection alone, and the pinned
// grpc-health-probe. The descriptors reflection serves must be ones a strict
// descriptor pool accepts (grpcurl builds one with protobuf-go): the file
// named deploy/v1/deploy.proto, its google/protobuf imports served too, and
// field names as written in the .proto (request_id, not requestId).
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { protoPath as healthProtoPath } from "grpc-health-check";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../scripts/lib/tools.js";
import { protoDir } from "../services/shared/src/proto.js";
import { Stack } from "./helpers/stack.js";

const TOOL_TIMEOUT_MS = 60_000;

interface ToolResult {
  /** The command line as a user would type it. */
  command: string;
  /** Exit code; null when killed (e.g. by the timeout). */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** The command and everything it printed, for failure messages. */
const shown = (r: ToolResult): string =>
  `$ ${r.command}\nexit ${r.code ?? `signal ${r.signal}`}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function run(tool: "grpcurl" | "grpc-health-probe", args: string[]): Promise<ToolResult> {
  const command = [tool, ...args.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`))].join(" ");
  return new Promise((resolve) => {
    const child = execFile(toolPath(tool), args, { timeout: TOOL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string | null }) | null;
      resolve({ command, code: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
    child.stdin?.end();
  });
}

let stack: Stack;

/** `grpcurl -plaintext <address> list|describe [symbol]`: no -proto, no -import-path. */
const grpcurl = (...verb: string[]): Promise<ToolResult> => run("grpcurl", ["-plaintext", stack.address, ...verb]);

/** `grpcurl -d <json> <address> <method>`, which must succeed. */
async function invoke(method: string, body: object, ...flags: string[]): Promise<ToolResult> {
  const r = await run("grpcurl", ["-plaintext", ...flags, "-d", JSON.stringify(body), stack.address, method]);
  expect(r.code, shown(r)).toBe(0);
  return r;
}

/** Every JSON object in grpcurl's output of a stream (pretty-printed messages, one after another). */
function jsonObjects(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" && depth++ === 0) start = i;
    else if (c === "}" && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

/**
 * The files of a FileDescriptorSet by name, as JSON, without what reflection
 * leaves out on purpose: source info (comments) and file options (go_package,
 * java_package: nothing a client needs to build messages).
 */
async function descriptorSet(file: string, rename: Record<string, string> = {}): Promise<Record<string, string>> {
  const set = descriptor.FileDescriptorSet.toObject(descriptor.FileDescriptorSet.decode(await readFile(file)), { enums: String, longs: String }) as {
    file: { name: string; sourceCodeInfo?: unknown; options?: unknown }[];
  };
  return Object.fromEntries(
    set.file.map(({ sourceCodeInfo: _s, options: _o, ...f }): [string, string] => {
      const name = rename[f.name] ?? f.name;
      return [name, JSON.stringify({ ...f, name })];
    }),
  );
}

interface DeploymentJson {
  id: string;
  requestId: string;
  app: string;
  environment: string;
  state: string;
  requestedBy: string;
  requestedByNote: string;
  changeset: { version: string };
  strategy: { maxConcurrency: number; applyTimeout: string };
  targets: { agentId: string }[];
}

interface EventJson {
  sequence: string;
  type: string;
  deploymentId: string;
  agentId?: string;
  agentIds?: string[];
  targetState?: string;
  deploymentState?: string;
}

beforeAll(async () => {
  stack = await Stack.start({ agents: ["a1", "a2"] });
});
afterAll(async () => {
  await stack?.stop();
});

describe("grpcurl describes the API by reflection alone", () => {
  it("list shows DeployService and the health service", async () => {
    const r = await grpcurl("list");
    expect(r.code, shown(r)).toBe(0);
    const services = r.stdout.split("\n").map((l) => l.trim());
    expect(services, shown(r)).toContain("deploy.v1.DeployService");
    expect(services, shown(r)).toContain("grpc.health.v1.Health");
    const methods = await grpcurl("list", "deploy.v1.DeployService");
    expect(methods.code, shown(methods)).toBe(0);
    expect(methods.stdout, shown(methods)).toContain("deploy.v1.DeployService.CreateDeployment");
  });

  it("describe deploy.v1.DeployService shows every method with its types and streaming", async () => {
    const r = await grpcurl("describe", "deploy.v1.DeployService");
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toContain("deploy.v1.DeployService is a service:");
    for (const line of [
      "rpc CreateDeployment ( .deploy.v1.CreateDeploymentRequest ) returns ( .deploy.v1.Deployment );",
      "rpc GetDeployment ( .deploy.v1.GetDeploymentRequest ) returns ( .deploy.v1.Deployment );",
      "rpc WatchDeployment ( .deploy.v1.WatchDeploymentRequest ) returns ( stream .deploy.v1.DeploymentEvent );",
      "rpc UploadArtifact ( stream .deploy.v1.UploadArtifactRequest ) returns ( .deploy.v1.Artifact );",
    ]) {
      expect(r.stdout, shown(r)).toContain(line);
    }
  });

  it("describe shows the .proto's own field names, its well-known-type imports, optional and map fields", async () => {
    const req = await grpcurl("describe", "deploy.v1.CreateDeploymentRequest");
    expect(req.code, shown(req)).toBe(0);
    expect(req.stdout, shown(req)).toContain("string request_id = 1;");
    expect(req.stdout, shown(req)).toContain("string requested_by = 7;");
    expect(req.stdout, shown(req)).not.toContain("requestId");
    // Duration and Timestamp resolve: google/protobuf/duration.proto and timestamp.proto are served as imports.
    const strategy = await grpcurl("describe", "deploy.v1.Strategy");
    expect(strategy.code, shown(strategy)).toBe(0);
    expect(strategy.stdout, shown(strategy)).toContain("optional uint32 max_concurrency = 1;");
    expect(strategy.stdout, shown(strategy)).toContain(".google.protobuf.Duration apply_timeout = 4;");
    const agent = await grpcurl("describe", "deploy.v1.Agent");
    expect(agent.code, shown(agent)).toBe(0);
    expect(agent.stdout, shown(agent)).toContain(".google.protobuf.Timestamp last_heartbeat = 6;");
    expect(agent.stdout, shown(agent)).toContain("map<string, string> current_releases = 9;");
    const ts = await grpcurl("describe", "google.protobuf.Timestamp");
    expect(ts.code, shown(ts)).toBe(0);
    expect(ts.stdout, shown(ts)).toContain("int64 seconds = 1;");
  });

  // grpcurl compiles .proto files itself (protocompile, as protoc would):
  // what reflection serves must be that, file for file.
  it("the descriptors served are the ones grpcurl compiles from the .proto files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "grpcurl-protoset-"));
    try {
      const served = join(dir, "served.pb");
      const r = await run("grpcurl", ["-plaintext", "-protoset-out", served, stack.address, "describe"]);
      expect(r.code, shown(r)).toBe(0);
      const healthDir = dirname(dirname(dirname(healthProtoPath)));
      const healthFile = relative(healthDir, healthProtoPath);
      const compiled = join(dir, "compiled.pb");
      const c = await run("grpcurl", ["-import-path", protoDir(), "-import-path", healthDir, "-proto", "deploy/v1/deploy.proto", "-proto", healthFile, "-protoset-out", compiled, "describe"]);
      expect(c.code, shown(c)).toBe(0);
      // grpc-health-check keeps health.proto as health/v1/health.proto; its upstream name is grpc/health/v1/health.proto.
      const expected = await descriptorSet(compiled, { [healthFile]: "grpc/health/v1/health.proto" });
      expect(Object.keys(expected).sort()).toEqual(["deploy/v1/deploy.proto", "google/protobuf/duration.proto", "google/protobuf/timestamp.proto", "grpc/health/v1/health.proto"]);
      expect(await descriptorSet(served), shown(r)).toEqual(expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("grpcurl calls the API by reflection", () => {
  it("CreateDeployment with a snake_case JSON body, GetDeployment, then WatchDeployment to the end", async () => {
    const requestId = `grpcurl-${randomUUID()}`;
    const created = await invoke("deploy.v1.DeployService/CreateDeployment", {
      request_id: requestId,
      app: stack.app,
      environment: stack.environment,
      changeset: { version: "v-grpcurl" },
      targets: ["a1", "a2"],
      strategy: { max_concurrency: 2, apply_timeout: "60s" },
      requested_by: "grpcurl",
    });
    // grpcurl prints responses with the JSON (lowerCamel) names.
    const d = JSON.parse(created.stdout) as DeploymentJson;
    expect(d.id, shown(created)).toMatch(/\S/);
    expect(d, shown(created)).toMatchObject({ requestId, app: stack.app, environment: stack.environment, requestedBy: "anonymous (development mode)", requestedByNote: "grpcurl", changeset: { version: "v-grpcurl" } });
    expect(d.strategy, shown(created)).toMatchObject({ maxConcurrency: 2, applyTimeout: "60s" });
    expect(d.targets.map((t) => t.agentId).sort(), shown(created)).toEqual(["a1", "a2"]);

    const got = await invoke("deploy.v1.DeployService/GetDeployment", { deployment_id: d.id });
    expect(JSON.parse(got.stdout), shown(got)).toMatchObject({ id: d.id, requestId, app: stack.app });

    // The server ends the stream after the deployment's terminal event;
    // -max-time only bounds a hang.
    const watched = await invoke("deploy.v1.DeployService/WatchDeployment", { deployment_id: d.id, after_sequence: 0 }, "-max-time", "50");
    const events = jsonObjects(watched.stdout) as EventJson[];
    const types = events.map((e) => e.type);
    expect(events.length, shown(watched)).toBeGreaterThan(0);
    expect(events.every((e) => e.deploymentId === d.id), shown(watched)).toBe(true);
    const sequences = events.map((e) => BigInt(e.sequence));
    expect(sequences.every((s, i) => i === 0 || s > sequences[i - 1]!), shown(watched)).toBe(true);
    expect(types[0], shown(watched)).toBe("deployment.created");
    expect(types.at(-1), shown(watched)).toBe("deployment.finished");
    expect(events.at(-1)?.deploymentState, shown(watched)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    for (const agentId of ["a1", "a2"]) {
      const result = events.find((e) => e.type === "target.result" && e.agentId === agentId);
      expect(result?.targetState, shown(watched)).toBe("TARGET_STATE_SUCCEEDED");
      expect(await stack.startsOf(agentId, d.id)).toBe(1);
    }

    const done = await invoke("deploy.v1.DeployService/GetDeployment", { deployment_id: d.id });
    expect((JSON.parse(done.stdout) as DeploymentJson).state, shown(done)).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });

  it("SetEnvironmentPolicy with a snake_case JSON body, ListEnvironmentPolicies, then cleared", async () => {
    const set = await invoke("deploy.v1.DeployService/SetEnvironmentPolicy", { environment: "qa", promote_from: "staging", min_soak: "7200s", require_canary: true, reason: "qa runs what staging ran" });
    expect(JSON.parse(set.stdout), shown(set)).toMatchObject({ environment: "qa", promoteFrom: "staging", minSoak: "7200s", requireCanary: true, reason: "qa runs what staging ran", by: "anonymous (development mode)" });
    const listed = await invoke("deploy.v1.DeployService/ListEnvironmentPolicies", {});
    expect((JSON.parse(listed.stdout) as { policies: { environment: string }[] }).policies.map((p) => p.environment), shown(listed)).toEqual(["qa"]);
    const cleared = await invoke("deploy.v1.DeployService/SetEnvironmentPolicy", { environment: "qa", reason: "done" });
    expect(JSON.parse(cleared.stdout), shown(cleared)).toMatchObject({ environment: "qa", reason: "done" });
    const none = await invoke("deploy.v1.DeployService/ListEnvironmentPolicies", {});
    expect(JSON.parse(none.stdout), shown(none)).toEqual({});
  });
});

describe("standard health checking", () => {
  it("grpc-health-probe reports SERVING for the server and for DeployService", async () => {
    for (const service of [[], ["-service", "deploy.v1.DeployService"]]) {
      const r = await run("grpc-health-probe", ["-addr", stack.address, ...service]);
      expect(r.code, shown(r)).toBe(0);
      expect(r.stdout + r.stderr, shown(r)).toContain("status: SERVING");
    }
  });

  it("grpcurl grpc.health.v1.Health/Check answers SERVING", async () => {
    for (const service of ["", "deploy.v1.DeployService"]) {
      const r = await invoke("grpc.health.v1.Health/Check", { service });
      expect(JSON.parse(r.stdout), shown(r)).toEqual({ status: "SERVING" });
    }
  });
});
