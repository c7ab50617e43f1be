// Loads proto/deploy/v1/deploy.proto for servers and clients. The options
// must match the ones scripts/proto-gen.mjs generates the types with.
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import type { ProtoGrpcType } from "./gen/deploy.js";

export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** proto/ at the package root, found from both src/ (tests) and dist/ (built). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "proto", "deploy", "v1", "deploy.proto"))) return join(dir, "proto");
    dir = dirname(dir);
  }
  throw new Error("proto/deploy/v1/deploy.proto not found above " + fileURLToPath(import.meta.url));
}

let cached: { def: PackageDefinition; proto: ProtoGrpcType } | undefined;

export function loadDeployProto(): { def: PackageDefinition; proto: ProtoGrpcType } {
  if (!cached) {
    const def = loadSync("deploy/v1/deploy.proto", { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir()] });
    cached = { def, proto: grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType };
  }
  return cached;
}

export type { ProtoGrpcType };
export type { DeployServiceClient, DeployServiceHandlers } from "./gen/deploy/v1/DeployService.js";
export type { Deployment__Output as DeploymentMsg, Deployment as DeploymentInput } from "./gen/deploy/v1/Deployment.js";
export type { DeploymentEvent__Output as DeploymentEventMsg, DeploymentEvent as DeploymentEventInput } from "./gen/deploy/v1/DeploymentEvent.js";
export type { CreateDeploymentRequest as CreateDeploymentRequestInput, CreateDeploymentRequest__Output as CreateDeploymentRequestMsg } from "./gen/deploy/v1/CreateDeploymentRequest.js";
export type { Agent as AgentInput, Agent__Output as AgentMsg } from "./gen/deploy/v1/Agent.js";

/** Milliseconds as a google.protobuf.Duration or Timestamp message (proto-loader's form). */
export function protoTime(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}
