// The coordinator process: explicit lifecycle (starting → running → draining
// → stopped) and a close() that stops taking calls, lets in-flight ones
// finish within a grace period, then stops hard.
import type { Server } from "@grpc/grpc-js";
import { Objm } from "@nats-io/obj";
import { ARTIFACTS_BUCKET, bindContext, connectNats, createLogger, type JsContext, type Logger } from "../../shared/src/index.js";
import { ArtifactStore } from "./artifacts/artifactStore.js";
import type { CoordinatorConfig } from "./config.js";
import { startGrpcServer } from "./grpc/server.js";
import { ensureInfrastructure } from "./infrastructure.js";
import { Registry } from "./registry.js";
import { Reconciler } from "./rollout/reconciler.js";

export type CoordinatorState = "starting" | "running" | "draining" | "stopped";

export interface Coordinator {
  readonly state: CoordinatorState;
  /** The bound gRPC port. */
  readonly port: number;
  readonly address: string;
  readonly ctx: JsContext;
  readonly reconciler: Reconciler;
  close(graceMs?: number): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger = createLogger("coordinator", config.logLevel)): Promise<Coordinator> {
  let state: CoordinatorState = "starting";
  const nc = await connectNats({ url: config.nats.url, name: "deploy-coordinator" });
  try {
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const jsm = await jetstreamManager(nc, { timeout: config.nats.apiTimeoutMs });
    await ensureInfrastructure(nc, jsm, { replicas: config.streams.replicas, commandsMaxAgeMs: config.streams.commandsMaxAgeMs });
    const ctx = await bindContext(nc, { apiTimeoutMs: config.nats.apiTimeoutMs });
    const registry = new Registry(ctx.agents, config.rollout.agentLiveMs, log.child({ component: "registry" }));
    await registry.start();
    const reconciler = new Reconciler(ctx, registry, config.rollout, log.child({ component: "reconciler" }));
    await reconciler.start();
    const artifacts = new ArtifactStore(await new Objm(ctx.js).open(ARTIFACTS_BUCKET), config.artifacts, log.child({ component: "artifacts" }));
    const shutdown = new AbortController();
    const grpc = await startGrpcServer(config.grpc.listen, {
      ctx,
      registry,
      reconciler,
      artifacts,
      defaults: { deliveryTimeoutMs: config.rollout.defaultDeliveryTimeoutMs, applyTimeoutMs: config.rollout.defaultApplyTimeoutMs },
      log: log.child({ component: "grpc" }),
      shutdown: shutdown.signal,
    });
    const host = config.grpc.listen.slice(0, config.grpc.listen.lastIndexOf(":"));
    state = "running";
    log.info({ listen: `${host}:${grpc.port}`, nats: config.nats.url }, "coordinator running");

    let closing: Promise<void> | undefined;
    return {
      get state() {
        return state;
      },
      port: grpc.port,
      address: `${host}:${grpc.port}`,
      ctx,
      reconciler,
      close(graceMs = 10_000) {
        closing ??= (async () => {
          state = "draining";
          grpc.health.setStatus("", "NOT_SERVING");
          grpc.health.setStatus("deploy.v1.DeployService", "NOT_SERVING");
          shutdown.abort();
          await shutdownServer(grpc.server, graceMs);
          await reconciler.close();
          await registry.close();
          await nc.drain().catch(() => nc.close());
          state = "stopped";
          log.info("coordinator stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

function shutdownServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
