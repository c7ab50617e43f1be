// `npm run cluster`: the production topology with local processes, up until Ctrl-C.
//
// Three nats-servers clustered on loopback ports (server_name n1..n3, store
// dirs under a temp dir), two coordinators (DEPLOY_STREAM_REPLICAS=3,
// NATS_URL naming all three nodes) and three agents web-1..web-3 serving app
// "web" in environment "local". Secured as production is: gen-credentials'
// code writes <dir>/credentials (nkeys, CA and certificate, tokens, signing
// key, agent bindings), NATS requires nkeys and TLS, the coordinators serve
// gRPC over TLS with tokens and sign commands, and nothing runs in
// development mode; --dev runs it all in development mode instead. Prints the
// addresses and how to deploy with deployctl; Ctrl-C (or SIGTERM) stops
// agents, coordinators, then NATS, and removes the temp dir (unless --dir was
// given).
//
//   node dist/scripts/cluster.js [--dir <dir>] [--log-level <level>] [--dev]
//
// Process logs go to <dir>/logs/<name>.log.
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { LocalCluster, ROOT } from "./cluster/launcher.js";
import { parseCli } from "./lib/cli.js";
import type { ClusterProcess } from "./cluster/launcher.js";

let stopping: Promise<void> | undefined;
let cluster: LocalCluster | undefined;

function stop(code: number): void {
  stopping ??= (async () => {
    console.log("\nstopping: agents, coordinators, then NATS…");
    await cluster?.stop();
    console.log("stopped");
    process.exit(code);
  })();
}

/** Mirrors each process's output into <dir>/logs/<name>.log while the cluster runs. */
function tee(p: ClusterProcess, logDir: string): void {
  const out = createWriteStream(join(logDir, `${p.name}.log`), { flags: "a" });
  let written = 0;
  const timer = setInterval(() => {
    // logLength counts what the bounded in-memory buffer has dropped too.
    const length = p.logLength;
    if (length > written) {
      out.write(p.logsSince(written));
      written = length;
    }
  }, 500);
  timer.unref();
}

async function main(): Promise<void> {
  const { values } = parseCli("cluster", "usage: node dist/scripts/cluster.js [--dir <dir>] [--log-level <level>] [--dev]", {
    dir: { type: "string" },
    "log-level": { type: "string", default: "info" },
    dev: { type: "boolean", default: false },
  });
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));

  const secure = !values.dev;
  console.log(`starting 3 NATS nodes, 2 coordinators, 3 agents${secure ? " with generated credentials" : " in development mode"}…`);
  cluster = await LocalCluster.start({
    ...(values.dir ? { dir: resolve(values.dir) } : {}),
    secure,
    logLevel: values["log-level"],
    onUnexpectedExit: (p, code, signal) => {
      if (!stopping) console.error(`cluster: ${p.name} exited (code ${String(code)}, signal ${String(signal)}); last output:\n${p.tail(10)}`);
    },
  });
  const logDir = join(cluster.dir, "logs");
  await mkdir(logDir, { recursive: true });
  for (const n of cluster.nats.nodes) tee(n.proc, logDir);
  for (const p of [...cluster.coordinators, ...cluster.agents.values()]) tee(p, logDir);

  const c1 = cluster.clientAddress(0);
  const c2 = cluster.coordinators.length > 1 ? cluster.clientAddress(1) : c1;
  const natsUrl = cluster.nats.url;
  const leader = await cluster.nats.waitForMetaLeader(10_000).catch(() => "?");
  const bundle = relative(process.cwd(), join(ROOT, "test/fixtures/bundles/hello")) || ".";
  const creds = cluster.credentials;
  const natsAuth = creds ? ` --tlsca ${join(creds, "ca.pem")} --nkey ${join(creds, "admin.nk")}` : "";
  const lines = [
    "",
    `cluster dir: ${cluster.dir} (process logs in logs/)`,
    creds
      ? `secured: credentials in ${creds} (NATS: nkeys and TLS, routes with TLS; gRPC: TLS and tokens; signed commands; agents bound to app ${cluster.app} in ${cluster.environment})`
      : "DEVELOPMENT MODE (--dev): no TLS, tokens, signing or NATS credentials",
    "",
    "NATS (cluster deploy-local, JetStream meta leader " + leader + "):",
    ...cluster.nats.nodes.map((n) => `  ${n.name}  client ${n.url}  route 127.0.0.1:${n.routePort}  monitor ${n.monitorUrl}  pid ${n.proc.pid}`),
    `  NATS_URL=${natsUrl}`,
    "",
    "coordinators (DEPLOY_STREAM_REPLICAS=3):",
    ...cluster.coordinators.map((p, i) => `  ${p.name}  gRPC ${cluster!.clientAddress(i)}  pid ${p.pid}`),
    "",
    `agents (app ${cluster.app}, environment ${cluster.environment}):`,
    ...[...cluster.agents.entries()].map(([id, p]) => `  ${id}  pid ${p.pid}  releases in ${cluster!.rootOf(id)}`),
    "",
    "deploy:",
    ...(creds ? [`  export DEPLOY_TLS=1 DEPLOY_CA=${join(creds, "ca.pem")} DEPLOY_TOKEN=$(cat ${join(creds, "deployer.token")})`] : []),
    `  npx deployctl agents --coordinator ${c1}`,
    `  npx deployctl deploy ${bundle} --app ${cluster.app} --env ${cluster.environment} --version v1.0.0 --max-concurrency 1 --coordinator ${c1}`,
    `  npx deployctl list --coordinator ${c2}`,
    "",
    "kill a coordinator or a NATS node mid-rollout and watch it finish:",
    `  kill -9 ${cluster.coordinators[0]?.pid ?? "<pid>"}    # ${cluster.coordinators[0]?.name ?? ""}; then: npx deployctl watch <id> --coordinator ${c2}`,
    `  nats --server ${natsUrl}${natsAuth} stream info DEPLOY_EVENTS   # cluster leader and replicas`,
    "",
    "Ctrl-C stops everything.",
  ];
  console.log(lines.join("\n"));
  // Children's pipes keep the event loop alive too; this keeps it alive on its own.
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  console.error(`cluster failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  stop(1);
});
