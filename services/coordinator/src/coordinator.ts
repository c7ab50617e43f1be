// The coordinator process: explicit lifecycle (starting → running → draining
// → stopped) and a close() that stops taking calls, lets in-flight ones
// finish within a grace period, then stops hard.
import { setTimeout as delay } from "node:timers/promises";
import type { Server } from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import {
  COORDINATORS_BUCKET,
  RELEASES_BUCKET,
  CORDONS_BUCKET,
  FREEZES_BUCKET,
  POLICIES_BUCKET,
  bindContext,
  connectNats,
  createLogger,
  loadDeployment,
  readBindingsFile,
  readSeedFile,
  signerFromSeed,
  type CommandSigner,
  type DeploymentRecord,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import { startMetricsServer } from "../../shared/src/metricsServer.js";
import { ArtifactStore } from "./artifacts/artifactStore.js";
import { artifactsInUse } from "./artifacts/retention.js";
import { earlyStoresSettled } from "./createDeployment.js";
import type { CoordinatorConfig } from "./config.js";
import { loadTokens, TokenAuthenticator } from "./grpc/auth.js";
import { startGrpcServer } from "./grpc/server.js";
import { startHttpServer } from "./http/server.js";
import { ensureInfrastructure } from "./infrastructure.js";
import { askToRegister, listenForHeartbeats, Registry } from "./registry.js";
import { Cordons } from "./cordons.js";
import { Freezes } from "./freezes.js";
import { Policies } from "./policies.js";
import { forgetSilentAgents } from "./queries/listAgents.js";
import { expiryAgeMs, startExpiry } from "./expireDeployments.js";
import { FREEZE_EVENTS, startNotifier } from "./notifier.js";
import { watchFreezeEdges } from "./freezeEdges.js";
import { CoordinatorMetrics } from "./metrics.js";
import { WatchSlots } from "./queries/watchDeployment.js";
import { Reconciler } from "./rollout/reconciler.js";
import { fencedCancels } from "./rollout/publishCommand.js";
import { Convergence } from "./releases/convergence.js";
import { ReleaseBook } from "./releases/releaseBook.js";
import { startRevert } from "./releases/rollback.js";
import { Membership } from "./rollout/membership.js";
import { backfillIndex } from "./queries/deploymentIndex.js";

export type CoordinatorState = "starting" | "running" | "draining" | "stopped";

/** How long a close waits for the created events of creates answered early (normally milliseconds). */
const EARLY_STORES_GRACE_MS = 5000;

export interface Coordinator {
  readonly state: CoordinatorState;
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound port of the web dashboard, when http.listen is set. */
  readonly httpPort: number | undefined;
  readonly address: string;
  readonly ctx: JsContext;
  readonly reconciler: Reconciler;
  /**
   * Reads agents.bindingsFile again (SIGHUP) and judges every agent entry by
   * it at once. An unreadable file changes nothing and throws.
   */
  reloadBindings(): void;
  close(graceMs?: number): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger = createLogger("coordinator", config.logLevel)): Promise<Coordinator> {
  let state: CoordinatorState = "starting";
  if (config.devMode) {
    log.warn(
      { grpc: config.grpc.listen },
      "DEVELOPMENT MODE: loopback listeners only; TLS, tokens, command signing and NATS credentials are not required. Never use it for a fleet (unset DEPLOY_DEV_MODE)",
    );
  }
  const seed = config.signing.seed || (config.signing.seedFile ? readSeedFile(config.signing.seedFile) : "");
  const commandSigner: CommandSigner | undefined = seed ? signerFromSeed(seed) : undefined;
  if (commandSigner) log.info({ signer: commandSigner.publicKey }, "commands are signed");
  else log.warn("commands are NOT signed (development mode): any NATS client allowed to publish deploy.cmd.> can run code on agents");
  const nc = await connectNats({
    url: config.nats.url,
    name: "deploy-coordinator",
    ...(config.nats.nkeySeedFile ? { nkeySeed: readSeedFile(config.nats.nkeySeedFile) } : {}),
    ...(config.nats.tlsCaFile ? { tlsCaFile: config.nats.tlsCaFile } : {}),
  });
  try {
    const { jetstreamManager } = await import("@nats-io/jetstream");
    // A cluster that has not elected its JetStream meta leader yet (or has
    // fewer peers than the replicas asked for) answers with timeouts or
    // "temporarily unavailable": wait for it rather than exit.
    for (let attempt = 1; ; attempt++) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: config.nats.apiTimeoutMs });
        await ensureInfrastructure(nc, jsm, config.streams, (message) => log.warn({ message }, "infrastructure"));
        break;
      } catch (err) {
        if (attempt >= 60) throw err;
        log.warn({ attempt, err: (err as Error).message }, "JetStream not ready; retrying");
        await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
      }
    }
    const ctx = await bindContext(nc, { apiTimeoutMs: config.nats.apiTimeoutMs });
    const metrics = new CoordinatorMetrics();
    const bindings = config.agents.bindingsFile ? readBindingsFile(config.agents.bindingsFile) : undefined;
    if (bindings) log.info({ bindingsFile: config.agents.bindingsFile, agents: bindings.size }, "agents are held to their bindings");
    else log.warn("no agent bindings (development mode): an agent may register for any environment and apps");
    // Before the registry: targets are resolved without cordoned agents from the first create.
    const cordons = new Cordons(await new Kvm(ctx.js).open(CORDONS_BUCKET), log.child({ component: "cordons" }));
    await cordons.start();
    const registry = new Registry(ctx.agents, config.rollout.agentLiveMs, log.child({ component: "registry" }), {
      cordons,
      ...(bindings ? { bindings } : {}),
      onRefused: () => metrics.agentEntriesRefused.inc(),
      onHeardAfterSilence: () => metrics.agentsHeardAfterSilence.inc(),
    });
    metrics.refusedAgents = () => registry.refusedCount;
    metrics.cordonedAgents = () => cordons.count;
    await registry.start();
    const freezes = new Freezes(await new Kvm(ctx.js).open(FREEZES_BUCKET), () => registry.clock.now(), log.child({ component: "freezes" }));
    await freezes.start();
    metrics.frozenEnvironments = () => freezes.count;
    const policies = new Policies(await new Kvm(ctx.js).open(POLICIES_BUCKET), () => registry.clock.now(), log.child({ component: "policies" }));
    await policies.start();
    const releases = new ReleaseBook(await new Kvm(ctx.js).open(RELEASES_BUCKET), log.child({ component: "releases" }));
    await releases.start();
    // Membership feeds the registry's clock with the servers' time of its own heartbeats (serverClock.ts).
    const membership = new Membership(await new Kvm(ctx.js).open(COORDINATORS_BUCKET), config.rollout.agentLiveMs, log.child({ component: "membership" }), registry.clock);
    await membership.start();
    // Idle agents are heard over core NATS only: nothing that judges
    // liveness (the reconciler, convergence, the API) starts before they
    // have answered this coordinator's request for a heartbeat.
    const heartbeats = listenForHeartbeats(nc, registry, log.child({ component: "registry" }));
    await heartbeats.answered;
    // Convergence needs the reconciler (to start what it creates), which tells it when a lock is freed.
    const late: { convergence?: Convergence; revert?: (rec: DeploymentRecord) => Promise<void> } = {};
    const reconciler = new Reconciler(
      ctx,
      registry,
      {
        ...config.rollout,
        commandSigner,
        cancelFenced: fencedCancels(config.streams),
        metrics,
        releases,
        onLockReleased: (app, env) => late.convergence?.considerPair(app, env),
        // Before the gRPC server is up (a sweep may finish a deployment first): not yet, the next sweep.
        revert: (rec) => (late.revert ? late.revert(rec) : Promise.reject(new Error("starting up"))),
        owner: () => membership.owner(),
      },
      log.child({ component: "reconciler" }),
    );
    await reconciler.start();
    // Deployments recorded before the list index existed (once; a no-op after).
    void backfillIndex(ctx, log.child({ component: "index" })).catch((err: unknown) => log.warn({ err }, "list index backfill failed"));
    const artifacts = new ArtifactStore(ctx.js, { ...config.artifacts, replicas: config.streams.replicas }, log.child({ component: "artifacts" }));
    artifacts.inUse = (app) => artifactsInUse(ctx, releases, app);
    const defaults = { deliveryTimeoutMs: config.rollout.defaultDeliveryTimeoutMs, applyTimeoutMs: config.rollout.defaultApplyTimeoutMs };
    const converge = new Convergence(
      { ctx, registry, releases, artifacts, reconciler, freezes, policies },
      { off: config.rollout.convergenceOff, defaults, retryMs: Math.max(1000, config.rollout.sweepIntervalMs) },
      log.child({ component: "convergence" }),
    );
    late.convergence = converge;
    const rollbackDeps = { ctx, registry, artifacts, releases, fleet: converge.fleet };
    late.revert = async (rec) => {
      const created = await startRevert(rollbackDeps, rec);
      if (!created) return;
      log.info({ deploymentId: created.record.spec.id, reverts: rec.spec.id, restores: rec.spec.revertTo?.release }, "auto_revert requested");
      reconciler.launch(created);
    };
    registry.onChange = (view) => converge.considerAgent(view);
    // An uncordoned agent's entry may predate the desired release, which
    // convergence does not act on (convergence.ts): it is asked to write it
    // again, and every coordinator's watch brings it to convergence.
    cordons.onChange = (agentId, cordon) => {
      if (cordon) return;
      try {
        askToRegister(nc, [agentId]);
      } catch (err) {
        log.warn({ agentId, err: (err as Error).message }, "could not ask an uncordoned agent to write its entry again");
      }
      const view = registry.get(agentId);
      if (view) converge.considerAgent(view);
    };
    // Agents write their entry with a new release at their next heartbeat
    // (agent/src/handleCommand.ts): a new desired release folded by another
    // coordinator is read here once, and its succeeded targets noted, so
    // that ListAgents shows them on it at once on every coordinator. A
    // deployment that failed changes no desired release: its succeeded
    // targets show here with their entries, within a heartbeat interval.
    releases.onChange = (r) => {
      const noted = registry.hasNoted(r.deploymentId)
        ? Promise.resolve()
        : loadDeployment(ctx, r.deploymentId).then(
          (loaded) => {
            if (loaded) registry.noteSucceeded(loaded.record);
          },
          (err: unknown) => log.warn({ deploymentId: r.deploymentId, err: (err as Error).message }, "could not read a new desired release's deployment to note its agents' release"),
        );
      void noted.then(() => converge.desiredChanged(r.app, r.environment));
    };
    converge.considerAll();
    // Agents silent longer than agents.forgetAfterMs are deregistered (a VM gone for good).
    const forgetTimer =
      config.agents.forgetAfterMs > 0
        ? setInterval(
          () =>
            void forgetSilentAgents({ ctx, registry, releases, cordons, log: log.child({ component: "registry" }) }, config.agents.forgetAfterMs, membership.owner()).catch((err: unknown) =>
              log.warn({ err: (err as Error).message }, "forgetting silent agents failed"),
            ),
          Math.max(250, Math.min(60_000, Math.floor(config.agents.forgetAfterMs / 4))),
        ).unref()
        : undefined;
    const expiry = startExpiry(
      ctx,
      releases,
      {
        maxAgeMs: expiryAgeMs(config.streams),
        intervalMs: config.streams.deploymentsExpiryIntervalMs,
        owner: () => membership.owner(),
        onExpired: () => metrics.deploymentsExpired.inc(),
      },
      log.child({ component: "expiry" }),
    );
    const notifier = config.notify.url
      ? startNotifier(config.notify, { ctx, log: log.child({ component: "notify" }), onOutcome: (outcome) => metrics.notifications.inc({ outcome }) })
      : undefined;
    // Only the notifier reads a freeze's edges (freezeEdges.ts).
    const edges =
      config.notify.url && FREEZE_EVENTS.some((e) => config.notify.events.includes(e))
        ? watchFreezeEdges(ctx, freezes.kv, freezes, () => registry.clock.now(), log.child({ component: "freeze-edges" }))
        : undefined;
    const shutdown = new AbortController();
    const watches = new WatchSlots(config.watches.max);
    metrics.watches = () => ({ open: watches.open, refused: watches.refused });
    const grpc = await startGrpcServer(config.grpc, {
      ctx,
      registry,
      reconciler,
      artifacts,
      releases,
      cordons,
      freezes,
      policies,
      convergence: converge,
      observe: (method, code, seconds) => {
        metrics.grpcCalls.inc({ method, code: String(code) });
        metrics.grpcDuration.observe({ method }, seconds);
      },
      defaults,
      log: log.child({ component: "grpc" }),
      shutdown: shutdown.signal,
      watches,
    });
    const host = config.grpc.listen.slice(0, config.grpc.listen.lastIndexOf(":"));
    const metricsServer = config.metrics.listen ? await startMetricsServer(config.metrics.listen, metrics.registry, log) : undefined;
    const httpServer = config.http.listen
      ? await startHttpServer(config.http, {
        ctx,
        registry,
        reconciler,
        releases,
        freezes,
        policies,
        rollback: rollbackDeps,
        defaults,
        auth: new TokenAuthenticator(loadTokens(config.grpc.tokens, config.grpc.tokensFile)),
        log: log.child({ component: "http" }),
        shutdown: shutdown.signal,
        watches,
      })
      : undefined;
    state = "running";
    log.info({ listen: `${host}:${grpc.port}`, nats: config.nats.url }, "coordinator running");

    let closing: Promise<void> | undefined;
    return {
      get state() {
        return state;
      },
      port: grpc.port,
      httpPort: httpServer?.port,
      address: `${host}:${grpc.port}`,
      ctx,
      reconciler,
      reloadBindings() {
        if (!config.agents.bindingsFile) throw new Error("no agents.bindingsFile to reload (development mode without bindings)");
        const next = readBindingsFile(config.agents.bindingsFile);
        registry.setBindings(next);
        log.info({ bindingsFile: config.agents.bindingsFile, agents: next.size, refused: registry.refusedCount }, "agent bindings reloaded");
      },
      close(graceMs = 10_000) {
        closing ??= (async () => {
          state = "draining";
          grpc.health.setStatus("", "NOT_SERVING");
          grpc.health.setStatus("deploy.v1.DeployService", "NOT_SERVING");
          shutdown.abort();
          await shutdownServer(grpc.server, graceMs);
          await httpServer?.close();
          // The created events of creates answered early, before NATS goes
          // (one cut off from NATS is stored by the next coordinator's sweep).
          await Promise.race([earlyStoresSettled(), delay(EARLY_STORES_GRACE_MS, undefined, { ref: false })]);
          expiry.stop();
          await edges?.stop();
          await notifier?.stop();
          clearInterval(forgetTimer);
          converge.close();
          await reconciler.close();
          await membership.close();
          heartbeats.stop();
          await registry.close();
          await releases.close();
          await cordons.close();
          await freezes.close();
          await policies.close();
          await metricsServer?.close();
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
