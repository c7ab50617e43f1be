// The cost of security (issue 18): what TLS, tokens, per-agent nkeys with
// bindings and signed, verified commands add to a fan-out of N and to
// CreateDeployment, measured in the same run with security off (development
// mode, as the rest of the bench) and on (production mode, with everything
// `npm run gen-credentials` writes, as test/secure-stack.test.ts runs it):
//
// - nats-server: TLS required (the generated CA and server certificate), the
//   generated least-privilege users, one nkey per process;
// - coordinator: production mode (no DEPLOY_DEV_MODE): gRPC over TLS with
//   bearer tokens (the bench calls as `deployer`), its own nkey and TLS to
//   NATS, commands signed with the generated signing key, every agent held
//   to its binding (bindings.json);
// - agents: production mode: their own nkeys, TLS to NATS, only commands
//   signed by the trusted key are run.
//
// Each mode gets a nats-server and a coordinator of its own, one after the
// other (off first), with the same shapes: ours' fan-out of N (cold, then
// warm: a second deployment to the same agents), then the API's paced
// creates and gets (api.ts runPacedApi: C clients, each on its own channel,
// one call per interval).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { generateCredentials, readEnvFile } from "../gen-credentials.js";
import { apiAgents, runPacedApi, type PacedApiResult } from "./api.js";
import type { JsWork } from "./monitor.js";
import type { StageRow } from "./timeline.js";
import { startBenchNatsServer } from "./natsServer.js";
import { ENVIRONMENT, runOurs } from "./ours.js";
import { agentId, startCoordinatorProc, type SecureAgents } from "./stack.js";
import type { BenchClientOptions } from "./client.js";

export interface SecurityModeResult {
  fanout: {
    ms: number;
    state: string;
    warmMs?: number;
    warmState?: string;
    agentStartMs: number;
    work?: JsWork;
    warmWork?: JsWork;
    cpuS?: Record<string, number>;
    /** Per target, cold: where the time goes (timeline.ts). */
    stages?: StageRow[];
  };
  api: PacedApiResult;
}

export interface SecurityResult {
  n: number;
  /** What "on" is. */
  on: SecurityModeResult | { error: string };
  off: SecurityModeResult | { error: string };
  setup: string;
}

export interface SecurityOptions {
  n: number;
  clients: number;
  perClient: number;
  intervalMs: number;
  stateRoot: string;
  timeoutMs: number;
  hostProcesses: number;
  /** --cpu-prof: the coordinator's and the agent hosts' CPU profiles, into <dir>/security-off and <dir>/security-on. */
  cpuProfDir?: string;
  log: (s: string) => void;
}

const SETUP =
  "off: development mode (as every other part of the bench). on: production mode with gen-credentials' output: nats-server with TLS and the generated least-privilege users; " +
  "the coordinator with gRPC TLS, bearer tokens (the bench calls as deployer), its nkey, TLS to NATS, signed commands and agent bindings; agents with their own nkeys, TLS to NATS and signature verification. " +
  "Each mode on its own nats-server and coordinator, off first, in the same run";

/** Credentials for this mode's agents (the fan-out's and the API's), as an operator would make them. */
async function credentials(run: string, o: SecurityOptions, fanoutApp: string, fanoutPrefix: string): Promise<{ dir: string; natsConfig: string; coordinatorEnv: Record<string, string>; client: BenchClientOptions; agents: SecureAgents; natsAuth: { nkeySeed: string; tlsCaFile: string } }> {
  const dir = await mkdtemp(join(tmpdir(), "bench-creds-"));
  const api = apiAgents(run, o.clients, o.perClient);
  const agents = [
    ...Array.from({ length: o.n }, (_, i) => ({ id: agentId(fanoutPrefix, i), environment: ENVIRONMENT, apps: [fanoutApp] })),
    ...Array.from({ length: o.clients }, (_, k) => ({ id: agentId(api.prefix, k), environment: ENVIRONMENT, apps: api.appsByIndex[k]! })),
  ];
  const { signingPublicKey } = generateCredentials({ out: dir, agents, coordinators: 1, admin: true, tlsHosts: ["localhost", "127.0.0.1"] });
  // nats-server's include takes paths relative to its config file, written
  // elsewhere: the generated blocks inline (as test/secure-stack.test.ts).
  const natsConfig = [await readFile(join(dir, "authorization.conf"), "utf8"), await readFile(join(dir, "tls.conf"), "utf8")].join("\n");
  const caFile = join(dir, "ca.pem");
  return {
    dir,
    natsConfig,
    coordinatorEnv: readEnvFile(join(dir, "coordinator-1.env")),
    client: { ca: await readFile(caFile), token: (await readFile(join(dir, "deployer.token"), "utf8")).trim(), servername: "localhost" },
    agents: { credsDir: dir, caFile, trustedSigner: signingPublicKey },
    natsAuth: { nkeySeed: (await readFile(join(dir, "admin.nk"), "utf8")).trim(), tlsCaFile: caFile },
  };
}

async function runMode(secure: boolean, o: SecurityOptions): Promise<SecurityModeResult> {
  const run = `${secure ? "on" : "off"}${randomUUID().slice(0, 4)}`;
  const app = `sec-${run}`;
  const prefix = `sec-${run}-`;
  const creds = secure ? await credentials(run, o, app, prefix) : undefined;
  const nats = await startBenchNatsServer(creds ? { configText: creds.natsConfig } : {});
  try {
    const profDir = o.cpuProfDir ? join(o.cpuProfDir, `security-${secure ? "on" : "off"}`) : undefined;
    const coord = await startCoordinatorProc(nats.url, { ...(creds ? { secure: { env: creds.coordinatorEnv, client: creds.client } } : {}), ...(profDir ? { cpuProfDir: profDir } : {}) });
    try {
      o.log(`security ${secure ? "on" : "off"}: fan-out ${o.n}…`);
      const ours = await runOurs({
        natsUrl: nats.url,
        monitorUrl: nats.monitorUrl,
        client: coord.client,
        stateRoot: o.stateRoot,
        n: o.n,
        shape: "fanout",
        timeoutMs: o.timeoutMs,
        hostProcesses: o.hostProcesses,
        cpuPids: { coordinator: coord.proc.pid, natsServer: nats.pid },
        warm: true,
        app,
        agentPrefix: prefix,
        ...(profDir ? { hostNodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`] } : {}),
        ...(creds ? { secure: creds.agents, natsAuth: creds.natsAuth } : {}),
      });
      o.log(`security ${secure ? "on" : "off"}: fan-out ${o.n} ${Math.round(ours.ms)} ms, warm ${ours.warm ? Math.round(ours.warm.ms) : "-"} ms; paced API…`);
      const api = await runPacedApi({
        natsUrl: nats.url,
        address: coord.address,
        stateRoot: o.stateRoot,
        clients: o.clients,
        perClient: o.perClient,
        intervalMs: o.intervalMs,
        run,
        ...(creds ? { clientOptions: creds.client, secure: creds.agents } : {}),
      });
      o.log(`security ${secure ? "on" : "off"}: CreateDeployment p50 ${api.create.p50.toFixed(1)} ms, p99 ${api.create.p99.toFixed(1)} ms`);
      return {
        fanout: {
          ms: ours.ms,
          state: ours.timedOut ? `NOT TERMINAL (${ours.state})` : ours.state,
          agentStartMs: ours.agentStartMs,
          ...(ours.warm ? { warmMs: ours.warm.ms, warmState: ours.warm.state } : {}),
          ...(ours.work ? { work: ours.work } : {}),
          ...(ours.warm?.work ? { warmWork: ours.warm.work } : {}),
          ...(ours.cpuS ? { cpuS: ours.cpuS } : {}),
          ...(ours.timeline ? { stages: ours.timeline.stages } : {}),
        },
        api,
      };
    } finally {
      await coord.stop();
    }
  } finally {
    await nats.stop();
    if (creds) await rm(creds.dir, { recursive: true, force: true });
  }
}

export async function runSecurity(o: SecurityOptions): Promise<SecurityResult> {
  const mode = (secure: boolean): Promise<SecurityModeResult | { error: string }> => runMode(secure, o).catch((err: unknown) => ({ error: (err instanceof Error ? (err.stack ?? err.message) : String(err)).slice(0, 4000) }));
  const off = await mode(false);
  const on = await mode(true);
  return { n: o.n, off, on, setup: SETUP };
}
