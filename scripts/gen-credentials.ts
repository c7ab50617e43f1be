#!/usr/bin/env node
// gen-credentials: per-process NATS nkeys, the matching nats-server
// authorization block (least privilege), each agent's binding (environment
// and apps) and the command signing key.
//
//   npm run gen-credentials -- --out ./creds --agent web-1:prod:web,api --agent web-2:prod:web [--coordinators 2] [--admin]
//        [--tls-hosts localhost,127.0.0.1,coord.example.com] [--paths-as /etc/nats-deploy] [--owner 1000:1000]
//   (or --agents web-1,web-2 --environment prod --apps web,api: the same binding for each)
//
// Writes into --out (files with secrets are mode 0600):
//   coordinator-<n>.nk   nkey seed of each coordinator (NATS_NKEY_SEED_FILE)
//   agent-<id>.nk        nkey seed of each agent        (NATS_NKEY_SEED_FILE)
//   admin.nk             an operator seed for the nats CLI (with --admin)
//   signing.nk           the command signing seed       (DEPLOY_SIGNING_SEED_FILE on coordinators)
//   signing.pub          its public key                 (DEPLOY_AGENT_TRUSTED_SIGNERS on agents)
//   authorization.conf   `include` it from nats-server.conf (see deploy/nats/auth/)
//   bindings.json        each agent's environment and apps (DEPLOY_AGENT_BINDINGS_FILE on coordinators)
//   ca.pem, ca.key       a CA; server.pem, server.key: a certificate it signs for --tls-hosts
//                        (coordinators' gRPC: DEPLOY_GRPC_TLS_CERT/KEY; NATS servers: tls.conf)
//   tls.conf             `include` it from nats-server.conf: clients must use TLS
//   route.pem, route.key a certificate for the NATS servers' routes (server and client
//                        auth, for --tls-hosts), on the NATS servers only
//   route-tls.conf       `include` it inside nats-server.conf's cluster { } block: routes
//                        use TLS and each peer must present a certificate the CA signed
//   deployer.token, viewer.token   bearer tokens for deployctl (DEPLOY_TOKEN)
//   tokens.json          their SHA-256 hashes and roles (DEPLOY_GRPC_TOKENS_FILE)
//   coordinator-<n>.env, agent-<id>.env   each process's environment (EnvironmentFile=, env_file:)
// --paths-as DIR writes the paths in the .env and tls.conf files as they will
// be on the machines or containers (default: --out); --owner UID[:GID]
// hands the files to the containers' user (run as root).
// Re-running with an existing --out keeps the seeds already there and adds
// the missing ones, so adding an agent is: re-run with the longer list of
// agents, copy the new agent's seed, reload nats-server (kill -HUP), copy
// bindings.json to the coordinators and send them SIGHUP (they re-read it).
// Moving an agent to another environment or app is the same re-run with its
// new binding.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createUser, fromSeed } from "@nats-io/nkeys";
import {
  AGENTS_BUCKET,
  COMMANDS_STREAM,
  COORDINATOR_CONSUMER,
  NOTIFIER_CONSUMER,
  COORDINATOR_SOURCE,
  DEPLOYMENTS_BUCKET,
  EVENTS_STREAM,
  RELEASES_BUCKET,
  CORDONS_BUCKET,
  FREEZES_BUCKET,
  POLICIES_BUCKET,
  COORDINATORS_BUCKET,
  agentConsumerName,
  artifactsBucket,
  consumerLeaderElectedSubject,
  HEARTBEAT_REQUEST_SUBJECT,
  HEARTBEAT_SUBJECTS,
  heartbeatSubject,
  TOKEN_RULE,
  agentIdProblem,
  isToken,
  kvStreamName,
  objStreamName,
} from "../services/shared/src/names.js";
import { bindingsJson } from "../services/shared/src/bindings.js";

export interface Permissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
}

const KV = kvStreamName;
const OBJ = objStreamName;

/**
 * What one agent may do: its own consumer, its own events (its start, the
 * per-target race, included), its own heartbeat; read its own registry
 * entry, its own event subjects (the race), the coordinators' decisions, and
 * artifacts. Every read it has names what it reads in the request subject
 * (direct gets), so none of them reaches another agent's commands or events,
 * or a deployment's record. Artifacts: only the buckets of `apps`, the apps
 * it is bound to.
 */
export function agentPermissions(id: string, apps: readonly string[], inboxPrefix = `_INBOX_${id}`): Permissions {
  const consumer = agentConsumerName(id);
  // Each bound app's bucket (deploy_artifacts_<app>): object metadata by
  // direct get (the subject in the request subject), and an object's chunks
  // by batched direct gets (the request subject without a subject: its body
  // names the chunks). No consumers: an agent leaves no state on the
  // artifact streams (artifactCache.ts; agents from before read through
  // consumers, and need their old credentials until they are upgraded).
  // Stream info and message get are what agents from before open the
  // bucket and read the metadata with. Object subjects carry no app (names
  // are base64, chunks a nuid), so the bucket is the only place an app can
  // be told apart.
  const artifacts = apps.flatMap((app) => {
    const stream = OBJ(artifactsBucket(app));
    return [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`, `$JS.API.STREAM.MSG.GET.${stream}`];
  });
  return {
    publish: {
      allow: [
        "$JS.API.INFO",
        // No STREAM.INFO but its apps' object stores' (binding a KV bucket
        // needs none): with a subjects filter it lists every subject, i.e.
        // every agent's commands and entry, and every deployment.
        // Its own durable consumer, created with its own filter only: the
        // server refuses a create whose config filter differs from the one
        // in the subject, so it cannot widen it to another agent's commands.
        `$JS.API.CONSUMER.INFO.${COMMANDS_STREAM}.${consumer}`,
        `$JS.API.CONSUMER.CREATE.${COMMANDS_STREAM}.${consumer}.deploy.cmd.${id}.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${COMMANDS_STREAM}.${consumer}`,
        `$JS.ACK.${COMMANDS_STREAM}.${consumer}.>`,
        // Reads by direct get, the subject read in the request subject (never
        // STREAM.MSG.GET, whose body can name any subject or sequence): its
        // own registry entry, the last event on its own subject of a
        // deployment (the per-target race: js/raceForTarget.ts), and the
        // coordinators' last decision about a deployment (handleCommand's
        // look before it races). Not deploy_deployments: an agent never
        // reads a deployment's record.
        `$JS.API.DIRECT.GET.${KV(AGENTS_BUCKET)}.$KV.${AGENTS_BUCKET}.${id}`,
        `$JS.API.DIRECT.GET.${EVENTS_STREAM}.deploy.evt.*.${id}`,
        `$JS.API.DIRECT.GET.${EVENTS_STREAM}.deploy.evt.*.${COORDINATOR_SOURCE}`,
        // Artifacts of its bound apps only (docs/security.md). None on DEPLOY_EVENTS.
        ...artifacts,
        // Writes: its own events, entry and heartbeats only.
        `deploy.evt.*.${id}`,
        `$KV.${AGENTS_BUCKET}.${id}`,
        heartbeatSubject(id),
      ],
      // The coordinators' durable consumer on the event stream is theirs
      // alone: no create over it, no pulling (stealing) from it, no delete
      // (found by test/security-nats.test.ts).
      deny: [
        `$JS.API.CONSUMER.*.${EVENTS_STREAM}.${COORDINATOR_CONSUMER}`,
        `$JS.API.CONSUMER.*.${EVENTS_STREAM}.${COORDINATOR_CONSUMER}.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.${COORDINATOR_CONSUMER}`,
      ],
    },
    // Replies, its own consumer's leader elections (it pulls again then), and
    // a starting coordinator's request for a heartbeat.
    subscribe: { allow: [`${inboxPrefix}.>`, consumerLeaderElectedSubject(COMMANDS_STREAM, consumer), HEARTBEAT_REQUEST_SUBJECT] },
  };
}

/** What a coordinator may do: manage the layout, publish commands and its own events; never delete or purge streams. */
export function coordinatorPermissions(): Permissions {
  return {
    publish: {
      allow: [
        "$JS.API.>",
        "deploy.cmd.>",
        // Its own decisions, and the per-target race decisions (a delivery
        // timeout or a cancel) on each target's own subject.
        "deploy.evt.>",
        `$KV.${DEPLOYMENTS_BUCKET}.>`,
        `$KV.${RELEASES_BUCKET}.>`,
        `$KV.${CORDONS_BUCKET}.>`,
        `$KV.${FREEZES_BUCKET}.>`,
        `$KV.${POLICIES_BUCKET}.>`,
        // Its heartbeat (rollout/membership.ts: who sweeps which deployment).
        `$KV.${COORDINATORS_BUCKET}.>`,
        // Every app's artifact bucket (deploy_artifacts_<app>; a subject
        // token cannot be matched by prefix) and the old shared one.
        "$O.>",
        `$JS.ACK.${EVENTS_STREAM}.>`,
        // A watch's answers to its push consumer's flow control (readEvents.ts followEvents).
        `$JS.FC.${EVENTS_STREAM}.>`,
        `$JS.ACK.${KV(AGENTS_BUCKET)}.>`,
        // The freeze notifications' consumer (notifier.ts).
        `$JS.ACK.${KV(FREEZES_BUCKET)}.${NOTIFIER_CONSUMER}.>`,
        `$JS.ACK.${KV(POLICIES_BUCKET)}.${NOTIFIER_CONSUMER}.>`,
        // Asks every agent for a heartbeat when it starts, and agents it
        // hears without an entry to write it again (registry.ts).
        HEARTBEAT_REQUEST_SUBJECT,
      ],
      deny: [
        "$JS.API.STREAM.DELETE.>",
        `$JS.API.STREAM.PURGE.${EVENTS_STREAM}`,
        `$JS.API.STREAM.PURGE.${COMMANDS_STREAM}`,
        `$JS.API.STREAM.MSG.DELETE.${EVENTS_STREAM}`,
        `$JS.API.STREAM.MSG.DELETE.${COMMANDS_STREAM}`,
        "$JS.API.ACCOUNT.PURGE.>",
      ],
    },
    // Agents' idle heartbeats (answered by nothing).
    subscribe: { allow: ["_INBOX.>", HEARTBEAT_SUBJECTS] },
  };
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[]): string => `[${xs.map(q).join(", ")}]`;

function userBlock(nkey: string, comment: string, p: Permissions | undefined): string {
  if (!p) return `    # ${comment}\n    { nkey: ${q(nkey)} }`;
  const part = (x: { allow: string[]; deny?: string[] }): string => `{ allow: ${list(x.allow)}${x.deny?.length ? `, deny: ${list(x.deny)}` : ""} }`;
  return `    # ${comment}\n    { nkey: ${q(nkey)}, permissions: { publish: ${part(p.publish)}, subscribe: ${part(p.subscribe)} } }`;
}

export interface Principals {
  coordinators: { name: string; publicKey: string }[];
  agents: { id: string; publicKey: string; apps: readonly string[] }[];
  /** Full access, for the nats CLI of an operator. */
  admin?: string;
}

/** The nats-server `authorization { users = [...] }` block for these keys. */
export function authorizationBlock(p: Principals): string {
  const users = [
    ...p.coordinators.map((c) => userBlock(c.publicKey, `coordinator ${c.name}`, coordinatorPermissions())),
    ...p.agents.map((a) => userBlock(a.publicKey, `agent ${a.id}`, agentPermissions(a.id, a.apps))),
    ...(p.admin ? [userBlock(p.admin, "admin (nats CLI): everything", undefined)] : []),
  ];
  return `# Generated by scripts/gen-credentials.ts: least-privilege NATS users.\nauthorization {\n  users = [\n${users.join(",\n")}\n  ]\n}\n`;
}

function seedOf(file: string): { seed: string; publicKey: string } {
  if (existsSync(file)) {
    const seed = readFileSync(file, "utf8").trim();
    return { seed, publicKey: fromSeed(new TextEncoder().encode(seed)).getPublicKey() };
  }
  const kp = createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  writeFileSync(file, `${seed}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { seed, publicKey: kp.getPublicKey() };
}

/** A secret file (0600) holding `text`, kept when it exists. */
function writeSecretOnce(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const text = make();
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return text;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`, { cause: err });
  }
}

/**
 * A CA (ca.pem, ca.key; kept when present) and two certificates it signs
 * for every host in `hosts` (DNS names and IP addresses), ECDSA P-256, 825
 * days (the longest browsers accept):
 * - server.pem, server.key: the coordinators' gRPC and the NATS servers'
 *   client port present it;
 * - route.pem, route.key: the NATS servers present it to each other on
 *   their routes, as server and as client (route-tls.conf). A certificate
 *   of its own, so the key that admits a server into the cluster is only on
 *   the NATS servers, not on every coordinator that serves gRPC.
 */
function writeTls(out: string, hosts: string[]): void {
  if (!existsSync(join(out, "ca.pem"))) {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "825", "-subj", "/CN=nats-deploy CA"], out);
  }
  const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  const certify = (name: string, cn: string, usage: string): void => {
    writeFileSync(join(out, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nkeyUsage=digitalSignature,keyEncipherment\n`);
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], out);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "825", "-extfile", `${name}.ext`], out);
    chmodSync(join(out, `${name}.key`), 0o600);
    for (const f of [`${name}.csr`, `${name}.ext`]) rmSync(join(out, f), { force: true });
  };
  certify("server", "nats-deploy", "serverAuth");
  // A route is dialled by one server and accepted by the other: both ends present it.
  certify("route", "nats-deploy route", "serverAuth,clientAuth");
  chmodSync(join(out, "ca.key"), 0o600);
  rmSync(join(out, "ca.srl"), { force: true });
}

/**
 * route-tls.conf, for inside nats-server.conf's cluster { } block: routes
 * are encrypted, and a server that cannot present a certificate the CA
 * signed (verify) is refused as a peer, so the cluster port admits only the
 * NATS servers that were given route.pem. A route's address must be one of
 * --tls-hosts: the dialling server checks the name.
 */
export function routeTlsBlock(at: string): string {
  return [
    "# Generated by scripts/gen-credentials.ts. `include` it INSIDE the cluster { } block:",
    "# routes use TLS, and every peer must present a certificate signed by ca.pem.",
    "tls {",
    `  cert_file: ${JSON.stringify(join(at, "route.pem"))}`,
    `  key_file: ${JSON.stringify(join(at, "route.key"))}`,
    `  ca_file: ${JSON.stringify(join(at, "ca.pem"))}`,
    "  verify: true",
    "  timeout: 5",
    "}",
    "",
  ].join("\n");
}

/** deployer.token and viewer.token (kept when present) and tokens.json with their SHA-256 only, for grpc.tokensFile. */
function writeTokens(out: string): { name: string; role: string; sha256: string }[] {
  const tokens = (["deployer", "viewer"] as const).map((role) => {
    const token = writeSecretOnce(join(out, `${role}.token`), () => randomBytes(32).toString("base64url"));
    return { name: role, role, sha256: createHash("sha256").update(token).digest("hex") };
  });
  writeFileSync(join(out, "tokens.json"), `${JSON.stringify(tokens, null, 2)}\n`);
  return tokens;
}

export interface CredentialsOptions {
  out: string;
  /** Each agent with the environment and apps its credentials bind it to. */
  agents: { id: string; environment: string; apps: string[] }[];
  coordinators: number;
  admin?: boolean;
  tlsHosts: string[];
  /** Where the files will be on the machines that use them (default: out). */
  pathsAs?: string;
}

/**
 * Writes (or completes) the credentials directory `out`; every seed, key and
 * token already there is kept. Throws on an invalid agent id or binding.
 */
export function generateCredentials(o: CredentialsOptions): { out: string; signingPublicKey: string } {
  for (const a of o.agents) {
    const problem = agentIdProblem(a.id) ?? bindingProblemOf(a);
    if (problem !== undefined) throw new Error(`agent ${a.id.slice(0, 80)}: ${problem}`);
  }
  const dup = o.agents.find((a, i) => o.agents.findIndex((b) => b.id === a.id) !== i);
  if (dup) throw new Error(`agent ${dup.id} is given twice`);
  if (!Number.isInteger(o.coordinators) || o.coordinators < 1) throw new Error("--coordinators must be at least 1");
  const out = resolve(o.out);
  const at = o.pathsAs ?? out;
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const coordinators = Array.from({ length: o.coordinators }, (_, i) => ({ name: `coordinator-${i + 1}`, publicKey: seedOf(join(out, `coordinator-${i + 1}.nk`)).publicKey }));
  const agents = o.agents.map((a) => ({ ...a, publicKey: seedOf(join(out, `agent-${a.id}.nk`)).publicKey }));
  const admin = o.admin ? seedOf(join(out, "admin.nk")).publicKey : undefined;
  const signing = seedOf(join(out, "signing.nk"));
  writeFileSync(join(out, "signing.pub"), `${signing.publicKey}\n`);
  writeFileSync(join(out, "authorization.conf"), authorizationBlock({ coordinators, agents, ...(admin ? { admin } : {}) }));
  // The coordinators hold each agent to the environment and apps given here.
  writeFileSync(join(out, "bindings.json"), bindingsJson(agents.map((a) => [a.id, { environment: a.environment, apps: a.apps }])));
  writeTls(out, o.tlsHosts);
  writeTokens(out);
  // For nats-server: `include` it (a path relative to the including file).
  writeFileSync(join(out, "tls.conf"), `# Generated by scripts/gen-credentials.ts: clients must use TLS.\ntls {\n  cert_file: ${JSON.stringify(join(at, "server.pem"))}\n  key_file: ${JSON.stringify(join(at, "server.key"))}\n}\n`);
  writeFileSync(join(out, "route-tls.conf"), routeTlsBlock(at));
  // One environment file per process (systemd EnvironmentFile=, compose env_file:).
  for (const c of coordinators) {
    writeFileSync(
      join(out, `${c.name}.env`),
      [
        `NATS_NKEY_SEED_FILE=${join(at, `${c.name}.nk`)}`,
        `NATS_CA_FILE=${join(at, "ca.pem")}`,
        `DEPLOY_SIGNING_SEED_FILE=${join(at, "signing.nk")}`,
        `DEPLOY_GRPC_TLS_CERT=${join(at, "server.pem")}`,
        `DEPLOY_GRPC_TLS_KEY=${join(at, "server.key")}`,
        `DEPLOY_GRPC_TOKENS_FILE=${join(at, "tokens.json")}`,
        `DEPLOY_AGENT_BINDINGS_FILE=${join(at, "bindings.json")}`,
        "",
      ].join("\n"),
    );
  }
  for (const a of agents) {
    writeFileSync(
      join(out, `agent-${a.id}.env`),
      [
        `DEPLOY_AGENT_ID=${a.id}`,
        // Its bound environment. Its apps (with their deploy executables) stay
        // in its own config: any of the bound ones (${a.apps.join(", ")}).
        `DEPLOY_ENVIRONMENT=${a.environment}`,
        `NATS_NKEY_SEED_FILE=${join(at, `agent-${a.id}.nk`)}`,
        `NATS_CA_FILE=${join(at, "ca.pem")}`,
        `DEPLOY_AGENT_TRUSTED_SIGNERS=${signing.publicKey}`,
        "",
      ].join("\n"),
    );
  }
  return { out, signingPublicKey: signing.publicKey };
}

function bindingProblemOf(a: { environment: string; apps: string[] }): string | undefined {
  if (!isToken(a.environment)) return `environment "${a.environment.slice(0, 80)}" is not valid: use ${TOKEN_RULE}`;
  if (a.apps.length === 0) return "needs at least one app";
  const bad = a.apps.find((x) => !isToken(x));
  return bad === undefined ? undefined : `app "${bad.slice(0, 80)}" is not valid: use ${TOKEN_RULE}`;
}

/** KEY=value lines of a .env file gen-credentials wrote. */
export function readEnvFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("=") && !l.startsWith("#"))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** `--agent web-1:prod:web,api` → its id, environment and apps. */
export function parseAgentSpec(spec: string): { id: string; environment: string; apps: string[] } {
  const [id = "", environment = "", apps = "", ...rest] = spec.split(":");
  if (rest.length > 0 || !id || !environment || !apps) throw new Error(`--agent ${spec}: expected <id>:<environment>:<app>[,<app>…]`);
  return { id, environment, apps: apps.split(",").map((x) => x.trim()).filter(Boolean) };
}

const USAGE =
  "usage: gen-credentials --out DIR (--agent ID:ENV:APP[,APP…] …| --agents ID,ID --environment ENV --apps APP[,APP…]) [--coordinators N] [--admin] [--tls-hosts h1,h2] [--paths-as DIR] [--owner UID[:GID]]\n";

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      agent: { type: "string", multiple: true, default: [] },
      agents: { type: "string", default: "" },
      environment: { type: "string" },
      apps: { type: "string" },
      coordinators: { type: "string", default: "1" },
      admin: { type: "boolean", default: false },
      "tls-hosts": { type: "string", default: "localhost,127.0.0.1" },
      "paths-as": { type: "string" },
      owner: { type: "string" },
    },
  });
  const fail = (message: string, code = 2): never => {
    process.stderr.write(`gen-credentials: ${message}\n`);
    process.exit(code);
  };
  if (!values.out) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const agents: CredentialsOptions["agents"] = [];
  try {
    for (const spec of values.agent) agents.push(parseAgentSpec(spec));
  } catch (err) {
    fail((err as Error).message);
  }
  const ids = values.agents.split(",").map((s) => s.trim()).filter(Boolean);
  if (ids.length > 0) {
    // An agent's environment and apps are the operator's to give, never the agent's to claim.
    if (!values.environment || !values.apps) fail("--agents needs --environment and --apps (or give each agent as --agent <id>:<environment>:<app>,<app>)");
    const apps = values.apps!.split(",").map((x) => x.trim()).filter(Boolean);
    for (const id of ids) agents.push({ id, environment: values.environment!, apps });
  }
  const hosts = values["tls-hosts"].split(",").map((h) => h.trim()).filter(Boolean);
  let out = "";
  try {
    out = generateCredentials({
      out: values.out,
      agents,
      coordinators: Number(values.coordinators),
      admin: values.admin,
      tlsHosts: hosts,
      ...(values["paths-as"] ? { pathsAs: values["paths-as"] } : {}),
    }).out;
  } catch (err) {
    fail((err as Error).message, /openssl/.test((err as Error).message) ? 1 : 2);
  }
  const at = values["paths-as"] ?? out;
  if (values.owner) {
    // The containers' user (node: 1000) must read its seeds; needs root.
    const [uid, gid] = values.owner.split(":").map(Number);
    for (const f of readdirSync(out)) chownSync(join(out, f), uid!, gid ?? uid!);
    chownSync(out, uid!, gid ?? uid!);
  }
  process.stdout.write(
    [
      `wrote ${out}: nkeys of ${values.coordinators} coordinator(s) and ${agents.length} agent(s), the signing key, authorization.conf, tls.conf and route-tls.conf for nats-server,`,
      `  bindings.json (each agent's environment and apps, for the coordinators),`,
      `  a CA (ca.pem), a server certificate and a route certificate (route.pem: NATS servers only) for ${hosts.join(", ")},`,
      `  tokens (deployer.token, viewer.token; tokens.json holds their hashes),`,
      `  and one environment file per process (coordinator-<n>.env, agent-<id>.env) naming files under ${at}`,
      `deployctl: DEPLOY_TLS=1 DEPLOY_CA=${join(at, "ca.pem")} DEPLOY_TOKEN=$(cat ${join(at, "deployer.token")})`,
      "",
    ].join("\n"),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
