// `npm run demo`: a real local stack end to end.
//
// Starts nats-server (JetStream, temp store under ./.demo/), one coordinator
// and three agents (web-1..web-3) from dist/, creates a deployment of app
// "web" to environment "demo" two at a time, prints every WatchDeployment
// event as it happens, then a summary from GetDeployment and the nats CLI
// commands to look inside. Exits 0 when the deployment SUCCEEDED, else 1.
//
//   node dist/scripts/demo.js [version] [--keep]
//
// --keep leaves the stack running after the summary until Ctrl-C.
// NATS_SERVER_BIN overrides the nats-server found on PATH; DEMO_DEBUG=1
// prints how long each process took to stop.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  loadDeployProto,
  type DeployServiceClient,
  type DeploymentEventMsg,
  type DeploymentMsg,
} from "../services/shared/src/proto.js";
import { ChildProc, sleep, type ExitListener } from "./lib/childProc.js";
import { parseCli, usageError } from "./lib/cli.js";
import { findNatsServerBinary, freePort, startNatsServer, type StandaloneNatsServer } from "./lib/natsServer.js";
import { AGENT_MAIN, COORDINATOR_MAIN, ROOT } from "./lib/paths.js";
import { toolsBinDir } from "./lib/tools.js";

const AGENTS = ["web-1", "web-2", "web-3"];
const APP = "web";
const ENVIRONMENT = "demo";
const TERMINAL = ["DEPLOYMENT_STATE_SUCCEEDED", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_CANCELLED"];

const DEPLOY_SCRIPT = `#!/usr/bin/env bash
# The demo's deploy executable: what an agent runs for app "web".
set -euo pipefail
echo "fetching release $DEPLOY_VERSION for $DEPLOY_APP on $DEPLOY_AGENT_ID"
sleep 0.4
echo "migrating"
sleep 0.4
echo "restarting"
sleep 0.4
echo "healthy"
`;

// ---------------------------------------------------------------- processes

/** Coordinator and agents, stopped before nats-server. */
const services: ChildProc[] = [];
let natsServer: StandaloneNatsServer | undefined;
/** This run's directory under ./.demo/: removed after a success, kept after a failure for a look. */
let runDir: string | undefined;
let stopping: Promise<void> | undefined;
/** Cancels the open WatchDeployment, if any: the coordinator drains open calls before it exits. */
let cancelWatch: (() => void) | undefined;

/** A child dying while the stack should be up is worth saying out loud. */
const reportExit: ExitListener = (p, code, signal) => {
  if (!stopping) process.stderr.write(`demo: ${p.name} exited unexpectedly (code ${String(code)}, signal ${String(signal)})\n${p.tail(15)}\n`);
};

function startService(name: string, file: string, env: Record<string, string>): ChildProc {
  // Own process group: a Ctrl-C in the terminal reaches only this script,
  // which then stops agents and coordinator before nats-server.
  const proc = new ChildProc(name, process.execPath, [file], { env, inheritEnv: true, detached: true });
  proc.onUnexpectedExit = reportExit;
  proc.spawn();
  services.push(proc);
  return proc;
}

/** SIGTERM every child (agents and coordinator first, nats-server last), wait; SIGKILL after 15 s. */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    cancelWatch?.();
    const stopOne = async (p: ChildProc): Promise<void> => {
      if (!p.running) return;
      const t0 = Date.now();
      await p.stop(15_000);
      if (process.env.DEMO_DEBUG) console.error(`${p.name} stopped in ${Date.now() - t0} ms`);
    };
    await Promise.all(services.map(stopOne));
    if (natsServer) await stopOne(natsServer.proc);
  })();
  return stopping;
}

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, watch: ChildProc[] = []): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const dead = watch.find((c) => !c.running);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${dead.tail(15)}`);
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------- gRPC

function unary<Req, Res>(client: DeployServiceClient, method: string, req: Req, deadlineMs = 10_000): Promise<Res> {
  return new Promise((res, rej) => {
    const fn = (client as unknown as Record<string, (r: Req, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>)[method]!;
    fn.call(client, req, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? rej(e) : res(r as Res)));
  });
}

// ---------------------------------------------------------------- output

const short = (s: string | undefined, prefix: string): string => (s ?? "").replace(prefix, "");

function clock(ts: { seconds?: string | number; nanos?: number } | null | undefined): string {
  if (!ts) return "--:--:--.---";
  const ms = Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString().slice(11, 23);
}

function eventLine(e: DeploymentEventMsg): string {
  const seq = `#${e.sequence ?? "?"}`.padStart(5);
  const type = (e.type ?? "").padEnd(20);
  const agent = (e.agentId || "-").padEnd(6);
  const state = e.agentId ? short(e.targetState, "TARGET_STATE_") : short(e.deploymentState, "DEPLOYMENT_STATE_");
  const detail = e.lines && e.lines.length > 0 ? e.lines.map((l) => `| ${l}`).join("  ") : (e.message ?? "");
  return `${clock(e.time)} ${seq} ${type} ${agent} ${state.padEnd(10)} ${detail}`.trimEnd();
}

function summary(d: DeploymentMsg): string {
  const rows = (d.targets ?? []).map((t) => [t.agentId ?? "", short(t.state, "TARGET_STATE_"), t.message ?? "", t.lastOutput ?? ""]);
  const head = ["TARGET", "STATE", "MESSAGE", "LAST OUTPUT"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => "  " + r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [
    `deployment ${d.id ?? ""}: ${short(d.state, "DEPLOYMENT_STATE_")} (${d.message ?? ""})`,
    fmt(head),
    ...rows.map(fmt),
  ].join("\n");
}

// ---------------------------------------------------------------- main

const USAGE = "usage: node dist/scripts/demo.js [version] [--keep]\n  version: the changeset version to deploy (default v1.0.0); --keep leaves the stack running until Ctrl-C";

async function main(): Promise<number> {
  const { values, positionals } = parseCli("demo", USAGE, { keep: { type: "boolean", default: false } }, true);
  if (positionals.length > 1) usageError("demo", USAGE, `one version at most, got ${positionals.length}: ${positionals.join(" ")}`);
  const keep = values.keep;
  const version = positionals[0] ?? "v1.0.0";

  if (!existsSync(COORDINATOR_MAIN) || !existsSync(AGENT_MAIN)) throw new Error("dist/ is missing: run `npm run build` first (or `npm run demo`)");
  findNatsServerBinary(); // fails early, with how to install it
  await mkdir(join(ROOT, ".demo"), { recursive: true });
  const dir = await mkdtemp(join(ROOT, ".demo", "run-"));
  runDir = dir;
  const deployScript = join(dir, "deploy-web.sh");
  await writeFile(deployScript, DEPLOY_SCRIPT, { mode: 0o755 });
  console.log(`demo dir: ${dir}`);

  const nats = await startNatsServer({ storeDir: join(dir, "jetstream"), detached: true, graceMs: 15_000 });
  natsServer = nats;
  nats.proc.onUnexpectedExit = reportExit;
  console.log(`nats-server: ${nats.url} (JetStream store ${join(dir, "jetstream")})`);

  const grpcAddress = `127.0.0.1:${await freePort()}`;
  // The web dashboard (services/dashboard), served by the coordinator; off by default.
  const httpAddress = `127.0.0.1:${await freePort()}`;
  const coordinator = startService("coordinator", COORDINATOR_MAIN, {
    NATS_URL: nats.url,
    DEPLOY_DEV_MODE: "1", // loopback only; see docs/production.md for production
    DEPLOY_GRPC_LISTEN: grpcAddress,
    DEPLOY_HTTP_LISTEN: httpAddress,
    LOG_LEVEL: "warn",
  });
  const agents = AGENTS.map((id) =>
    startService(id, AGENT_MAIN, {
      NATS_URL: nats.url,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_AGENT_ID: id,
      DEPLOY_ENVIRONMENT: ENVIRONMENT,
      DEPLOY_AGENT_APPS: JSON.stringify({ [APP]: { deploy: deployScript } }),
      DEPLOY_AGENT_STATE_DIR: join(dir, "agents", id),
      // Each agent its own release root, inside the demo dir: the default
      // (/srv/deploy) would be shared by the three agents of this machine,
      // and a bundle deployed to the stack (--keep) failed on the second
      // agent ("release … already exists").
      DEPLOY_AGENT_ROOT: join(dir, "agents", id, "root"),
      DEPLOY_AGENT_HEARTBEAT_MS: "1000",
      LOG_LEVEL: "warn",
    }),
  );

  const { proto } = loadDeployProto();
  const client = new proto.deploy.v1.DeployService(grpcAddress, grpc.credentials.createInsecure());
  try {
    console.log(`coordinator: gRPC ${grpcAddress}; agents: ${AGENTS.join(", ")}`);
    console.log(`dashboard: http://${httpAddress}/`);
    const live = await waitFor(
      "3 live agents in ListAgents",
      30_000,
      async () => {
        const r = await unary<object, { agents?: { id?: string; live?: boolean }[] }>(client, "ListAgents", { app: APP, environment: ENVIRONMENT }, 2000);
        const ids = (r.agents ?? []).filter((a) => a.live).map((a) => a.id ?? "");
        return ids.length >= AGENTS.length ? ids : undefined;
      },
      [nats.proc, coordinator, ...agents],
    );
    console.log(`live agents: ${live.sort().join(", ")}`);

    const requestId = `demo-${randomUUID()}`;
    const created = await unary<object, DeploymentMsg>(client, "CreateDeployment", {
      requestId,
      app: APP,
      environment: ENVIRONMENT,
      changeset: { version },
      strategy: { maxConcurrency: 2 },
      requestedBy: "npm run demo",
    });
    const id = created.id ?? "";
    console.log(`\ncreated deployment ${id} (request_id ${requestId}): ${APP} ${version} to ${ENVIRONMENT}, max_concurrency 2`);
    console.log(`watch it live: http://${httpAddress}/#/deployments/${id}`);
    console.log(`\nevents (WatchDeployment ${id}):`);

    await new Promise<void>((res, rej) => {
      const call = client.WatchDeployment({ deploymentId: id, afterSequence: "0" });
      cancelWatch = () => call.cancel();
      const timer = setTimeout(() => {
        call.cancel();
        rej(new Error("the deployment did not finish within 120 s"));
      }, 120_000);
      call.on("data", (e: DeploymentEventMsg) => console.log("  " + eventLine(e)));
      call.on("end", () => {
        clearTimeout(timer);
        cancelWatch = undefined;
        res();
      });
      call.on("error", (err: Error) => {
        clearTimeout(timer);
        rej(err);
      });
    });

    const final = await unary<object, DeploymentMsg>(client, "GetDeployment", { deploymentId: id });
    console.log("\n" + summary(final));
    console.log(`
look inside (nats CLI, https://github.com/nats-io/natscli${keep ? "" : "; run the demo with --keep to leave the stack up for them"}):
  export PATH="${toolsBinDir()}:$PATH"   # the pinned nats CLI (scripts/tools.sh)
  nats --server ${nats.url} stream view DEPLOY_EVENTS 25
  nats --server ${nats.url} kv get --raw deploy_deployments ${id}
  nats --server ${nats.url} consumer info DEPLOY_COMMANDS agent-web-1`);

    if (keep) {
      // What to type next, as typed in a clone (test/demo.test.ts runs these lines).
      console.log(`
--keep: stack left running (gRPC ${grpcAddress}, dashboard http://${httpAddress}/, NATS ${nats.url}); Ctrl-C stops it.
try it, in another shell in this directory:
  export DEPLOY_COORDINATOR=${grpcAddress}
  npx deployctl agents
  npx deployctl deploy examples/hello --app web --env demo --version v2
  npx deployctl deploy examples/bad --app web --env demo --version v3    # its validate hook fails: rolled back, FAILED (exit 1)
  npx deployctl deploy --executable --app web --env demo --version v4
  npx deployctl list`);
      await new Promise<void>((res) => {
        releaseKeep = res;
      });
    }
    const ok = final.state === "DEPLOYMENT_STATE_SUCCEEDED";
    if (!TERMINAL.includes(final.state ?? "")) console.error(`deployment is not terminal: ${final.state ?? "?"}`);
    return ok ? 0 : 1;
  } finally {
    client.close();
  }
}

/** Set while --keep waits: the first Ctrl-C ends the wait and main() stops normally. */
let releaseKeep: (() => void) | undefined;
let interrupted = false;
const onSignal = (sig: NodeJS.Signals): void => {
  if (releaseKeep) {
    releaseKeep();
    releaseKeep = undefined;
    return;
  }
  if (interrupted) return;
  interrupted = true;
  console.error(`\n${sig}: stopping the stack`);
  void stopAll().then(() => process.exit(130));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

main().then(
  async (code) => {
    console.log("\nstopping the stack…");
    await stopAll();
    if (code === 0 && runDir) await rm(runDir, { recursive: true, force: true });
    else if (runDir) console.log(`kept ${runDir} (agent journals, JetStream store, deploy script)`);
    process.exit(code);
  },
  async (err: unknown) => {
    if (interrupted) return; // the signal handler is stopping the stack and exits 130
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    if (runDir) console.error(`kept ${runDir} (agent journals, JetStream store, deploy script)`);
    process.exit(1);
  },
);
