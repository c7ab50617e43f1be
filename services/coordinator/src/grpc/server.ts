// The gRPC server: DeployService, standard health checking and reflection.
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { loadDeployProto } from "../../../shared/src/proto.js";
import { deployServiceHandlers, type ServiceDeps } from "./service.js";

export interface GrpcServer {
  server: grpc.Server;
  health: HealthImplementation;
  /** Port actually bound (useful with :0). */
  port: number;
}

export async function startGrpcServer(listen: string, deps: ServiceDeps): Promise<GrpcServer> {
  const { def, proto } = loadDeployProto();
  const server = new grpc.Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  server.addService(proto.deploy.v1.DeployService.service, deployServiceHandlers(deps));
  const health = new HealthImplementation({ "": "NOT_SERVING", "deploy.v1.DeployService": "NOT_SERVING" });
  health.addToServer(server);
  new ReflectionService(def).addToServer(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  health.setStatus("", "SERVING");
  health.setStatus("deploy.v1.DeployService", "SERVING");
  return { server, health, port };
}
