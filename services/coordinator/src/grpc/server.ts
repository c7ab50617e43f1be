// The gRPC server: DeployService, standard health checking and reflection.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { loadDeployProto } from "../../../shared/src/proto.js";
import type { CoordinatorConfig } from "../config.js";
import { loadTokens, serverCredentials, TokenAuthenticator, withAuth } from "./auth.js";
import { scopeTable } from "./scope.js";
import { createReflectionService } from "./reflection.js";
import { deployServiceHandlers, type ServiceDeps } from "./service.js";

export interface GrpcServer {
  server: grpc.Server;
  health: HealthImplementation;
  /** Port actually bound (useful with :0). */
  port: number;
}

export async function startGrpcServer(config: CoordinatorConfig["grpc"], deps: ServiceDeps): Promise<GrpcServer> {
  const { proto } = loadDeployProto();
  const auth = new TokenAuthenticator(loadTokens(config.tokens, config.tokensFile));
  const credentials = serverCredentials(config.tls);
  const tls = Boolean(config.tls.certFile);
  if (!tls || !auth.enabled) {
    // Development mode only (config refuses the rest): say what is missing.
    deps.log.warn(
      { tls, authentication: auth.enabled },
      !tls && !auth.enabled ? "plaintext gRPC without authentication (development mode)"
        : !tls ? "plaintext gRPC: bearer tokens travel unencrypted (development mode)"
        : "gRPC without authentication: anyone who reaches the port can deploy (development mode)",
    );
  }
  const server = new grpc.Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  server.addService(proto.deploy.v1.DeployService.service, withAuth(deployServiceHandlers(deps), auth, deps.log, { mutualTls: tls && Boolean(config.tls.clientCaFile), scope: scopeTable(deps) }));
  const health = new HealthImplementation({ "": "NOT_SERVING", "deploy.v1.DeployService": "NOT_SERVING" });
  health.addToServer(server);
  // Not `def`: its descriptors are camel-cased and merged per package, which
  // grpcurl and other strict clients reject (see reflection.ts).
  createReflectionService().addToServer(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  health.setStatus("", "SERVING");
  health.setStatus("deploy.v1.DeployService", "SERVING");
  return { server, health, port };
}
