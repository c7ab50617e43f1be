// The handles every JetStream operation takes. Agents and coordinators build
// it the same way; only the coordinator creates streams and buckets
// (services/coordinator/src/infrastructure.ts), everyone else binds.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { AGENTS_BUCKET, DEPLOYMENTS_BUCKET } from "../names.js";
import { nkeyConnectAuthenticator } from "../signing.js";
import { ServerTooOldError, serverVersionError } from "./serverVersion.js";
// Every connection made here: requests without a thrown-away Error each (requestCancel.ts).
import "./requestCancel.js";

export interface JsContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  deployments: KV;
  agents: KV;
}

export interface ConnectOptions {
  url: string;
  name: string;
  /** How long a JetStream API call may take before it fails (and is retried by the caller). */
  apiTimeoutMs?: number;
  /** nkey seed (SU…) when the server requires nkey authentication (deploy/nats/auth). */
  nkeySeed?: string;
  /** Reply subjects start with this instead of _INBOX (agents: _INBOX_<id>, so permissions can pin them). */
  inboxPrefix?: string;
  /** PEM CA the servers' certificates are checked against: the connection uses TLS. */
  tlsCaFile?: string;
  /** How often the client PINGs the server (nats.js's default: 2 minutes); agents check their link otherwise (agent/src/linkCheck.ts). */
  pingIntervalMs?: number;
}

/**
 * Connects and keeps reconnecting for ever: a NATS restart must not end a
 * coordinator or an agent, only pause them. Refuses (closes and throws) a
 * server older than MIN_SERVER_VERSION, naming the version it found.
 */
export async function connectNats(opts: ConnectOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: opts.url.split(",").map((s) => s.trim()),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    // No stack captured per request: two Error objects per JetStream call
    // are a large share of a busy coordinator's CPU. Failures keep their
    // message and our own context (UnavailableError "could not …").
    noAsyncTraces: true,
    ...(opts.nkeySeed ? { authenticator: nkeyConnectAuthenticator(opts.nkeySeed) } : {}),
    ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
    ...(opts.tlsCaFile ? { tls: { caFile: opts.tlsCaFile } } : {}),
    ...(opts.pingIntervalMs ? { pingInterval: opts.pingIntervalMs } : {}),
  });
  const tooOld = serverVersionError(nc.info?.version, nc.getServer());
  if (tooOld !== null) {
    await nc.close();
    throw new ServerTooOldError(tooOld);
  }
  return nc;
}

/**
 * `directGets` (agents): read deploy_agents keys with
 * direct gets, whose request subject names the key
 * ($JS.API.DIRECT.GET.<stream>.$KV.<bucket>.<key>), so an agent's NATS
 * permissions can allow its own keys only; a plain get names the key in its
 * body, which permissions cannot see. Any replica answers a direct get and a
 * follower may trail the leader by a moment: what the agent reads that way
 * tolerates it (its own entry, written before it started). Coordinators
 * keep leader reads.
 */
export async function bindContext(nc: NatsConnection, opts: { apiTimeoutMs?: number; directGets?: boolean } = {}): Promise<JsContext> {
  const timeout = opts.apiTimeoutMs ?? 5000;
  const js = jetstream(nc, { timeout });
  const jsm = await jetstreamManager(nc, { timeout });
  const kvm = new Kvm(js);
  const direct = opts.directGets ? { allow_direct: true } : {};
  const [deployments, agents] = await Promise.all([kvm.open(DEPLOYMENTS_BUCKET), kvm.open(AGENTS_BUCKET, direct)]);
  return { nc, js, jsm, deployments, agents };
}
