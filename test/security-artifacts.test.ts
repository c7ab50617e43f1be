// Issue 18: an agent reads only its apps' artifacts. Each app's bundles are
// in their own object store bucket (deploy_artifacts_<app>), and the NATS
// permissions gen-credentials generates let an agent read only the buckets
// of the apps it is bound to. A real nats-server runs that authorization
// block: agent w1 (bound to web) installs web's bundle, and every way it has
// of reading api's bundle (the agent's own fetch, direct gets, consumers,
// the old shared bucket) is refused by the server, even when it claims api
// in its own config and is sent a deployment of api. Artifacts uploaded to
// the shared bucket of earlier versions are copied into the app's bucket by
// the first deployment that names them.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizationBlock } from "../scripts/gen-credentials.js";
import { fetchArtifact } from "../services/agent/src/artifactCache.js";
import { artifactObjectName, type Logger } from "../services/shared/src/index.js";
import { makeBundle, script } from "./helpers/bundles.js";
import { DeployClient } from "./helpers/client.js";
import { newKey, uniq, type Key } from "./helpers/security.js";
import { Stack } from "./helpers/stack.js";

const sha = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const keys: Record<string, Key> = { coordinator: newKey(), w1: newKey(), p1: newKey(), o1: newKey(), admin: newKey() };
const signing = newKey();
let dir = "";
let stack: Stack;
let client: DeployClient;
let admin: NatsConnection;
let asW1: NatsConnection;
const refs: Record<string, { name: string; digest: string; size: number }> = {};

function bundle(app: string, version: string): Promise<Buffer> {
  return makeBundle([
    { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: hooks/start.sh, timeout: 30s }\n" },
    { name: "app/VERSION", content: `${app} ${version}` },
    { name: "hooks/start.sh", mode: 0o755, content: script("exit 0") },
  ]);
}

/**
 * `agent`'s user in `block` as credentials made before agents read chunks by
 * direct gets had it: consumers on `stream`, no batched direct get.
 */
function withOldArtifactReads(block: string, agent: string, stream: string): string {
  const at = block.indexOf(`# agent ${agent}\n`);
  const end = block.indexOf("\n", block.indexOf("\n", at) + 1);
  const before = `"$JS.API.DIRECT.GET.${stream}", `;
  const user = block.slice(at, end);
  expect(user).toContain(before);
  const old = ["CREATE", "MSG.NEXT", "DELETE", "INFO"].map((op) => `"$JS.API.CONSUMER.${op}.${stream}.>", `).join("");
  return block.slice(0, at) + user.replace(before, old) + block.slice(end);
}

async function refused(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch {
    return true;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "deploy-artifact-auth-"));
  for (const [who, k] of Object.entries(keys)) writeFileSync(join(dir, `${who}.nk`), `${k.seed}\n`, { mode: 0o600 });
  stack = await Stack.start({
    agents: [],
    natsConfigText: withOldArtifactReads(
      authorizationBlock({
        coordinators: [{ name: "c1", publicKey: keys.coordinator!.publicKey }],
        agents: [
          { id: "w1", publicKey: keys.w1!.publicKey, apps: ["web"] },
          { id: "p1", publicKey: keys.p1!.publicKey, apps: ["api"] },
          { id: "o1", publicKey: keys.o1!.publicKey, apps: ["web"] },
        ],
        admin: keys.admin!.publicKey,
      }),
      "o1",
      "OBJ_deploy_artifacts_web",
    ),
    coordinatorEnv: { NATS_NKEY_SEED_FILE: join(dir, "coordinator.nk"), DEPLOY_SIGNING_SEED: signing.seed },
  });
  const env = (id: string): Record<string, string> => ({ NATS_NKEY_SEED_FILE: join(dir, `${id}.nk`), DEPLOY_AGENT_TRUSTED_SIGNERS: signing.publicKey });
  const deploy = join(stack.dir, "deploy.sh");
  writeFileSync(deploy, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  // w1's credentials bind it to web; its own config claims api too (no
  // bindings file here, so the coordinator believes it): only NATS stands
  // between it and api's bundles.
  await stack.startAgent("w1", { apps: { web: { deploy }, api: { deploy } }, env: env("w1") });
  await stack.startAgent("p1", { apps: { api: { deploy } }, env: env("p1") });
  client = stack.client();
  admin = await connect({ servers: stack.nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(keys.admin!.seed)) });
  asW1 = await connect({ servers: stack.nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(keys.w1!.seed)), inboxPrefix: "_INBOX_w1" });
}, 90_000);

afterAll(async () => {
  await asW1?.close().catch(() => undefined);
  await admin?.close().catch(() => undefined);
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("artifacts: one bucket per app, readable only by its agents", () => {
  it("uploads go to their app's bucket: by name (deployctl's way) or by header.app", async () => {
    const web = await bundle("web", "v1");
    const a = await client.upload("web", web);
    expect(a.app).toBe("web");
    refs.web = { name: "web", digest: a.digest, size: web.length };
    const api = await bundle("api", "v1");
    const b = await client.upload("api-bundle.v1", api, undefined, "api");
    expect(b.app).toBe("api");
    refs.api = { name: "api-bundle.v1", digest: b.digest, size: api.length };
    const names: string[] = [];
    for await (const n of (await jetstreamManager(admin)).streams.names()) names.push(n);
    expect(names).toEqual(expect.arrayContaining(["OBJ_deploy_artifacts_web", "OBJ_deploy_artifacts_api"]));
    expect(names).not.toContain("OBJ_deploy_artifacts");
    expect((await client.listArtifacts(undefined, "api")).artifacts?.map((x) => x.name)).toEqual(["api-bundle.v1"]);
    expect((await client.getArtifact("api-bundle.v1", b.digest, "api")).app).toBe("api");
    // Another app's bucket does not have it.
    const miss = (await client.getArtifact("api-bundle.v1", b.digest, "web").catch((e: unknown) => e)) as grpc.ServiceError;
    expect(miss.code).toBe(grpc.status.NOT_FOUND);
  });

  it("an upload whose name is not an app name needs header.app", async () => {
    const err = (await client.upload("web.tgz", await bundle("web", "vx")).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/header\.app/);
  });

  it("a deployment names an artifact of its own app: another app's is not stored for it", async () => {
    const err = (await client
      .create({ requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v1", artifact: { name: refs.api!.name, digest: refs.api!.digest } } })
      .catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/not stored for app web/);
  });

  it("each agent installs its own app's bundle under least privilege", { timeout: 120_000 }, async () => {
    for (const [app, agent] of [["web", "w1"], ["api", "p1"]] as const) {
      const r = refs[app]!;
      const d = await client.create({ requestId: uniq("r"), app, environment: "prod", changeset: { version: "v1", artifact: { name: r.name, digest: r.digest } }, targets: [agent] });
      expect((await client.waitTerminal(d.id!)).state, app).toBe("DEPLOYMENT_STATE_SUCCEEDED");
      expect(await readlink(join(stack.rootOf(agent), app, "current"))).toMatch(/^releases\/v1-/);
    }
    expect(stack.nats.logs()).not.toMatch(/Violation/i);
  });

  it("agent w1 (bound to web) cannot read api's artifact: the server refuses every way", async () => {
    const js = jetstream(asW1, { timeout: 1500 });
    const jsm = await jetstreamManager(asW1, { timeout: 1500, checkAPI: false });
    // The agent's own download path: its app's bundle, yes; api's, no.
    const cache = join(dir, "w1-cache");
    expect(await fetchArtifact(asW1, js, "web", cache, refs.web!)).toMatch(/\.tar\.gz$/);
    const err = await fetchArtifact(asW1, js, "api", cache, refs.api!).catch((e: unknown) => e as Error);
    expect(String(err)).toMatch(/permissions? violation/i);
    // Around it: opening the bucket, a direct get of the object's metadata, a consumer on its chunks.
    expect(await refused(new Objm(js).open("deploy_artifacts_api"))).toBe(true);
    const meta = `$O.deploy_artifacts_api.M.${Buffer.from(artifactObjectName(refs.api!.name, refs.api!.digest)).toString("base64url")}`;
    expect(await refused(jsm.direct.getMessage("OBJ_deploy_artifacts_api", { last_by_subj: meta }))).toBe(true);
    expect(await refused(jsm.streams.getMessage("OBJ_deploy_artifacts_api", { seq: 1 }))).toBe(true);
    expect(await refused(jsm.consumers.add("OBJ_deploy_artifacts_api", { name: "spy", filter_subject: "$O.deploy_artifacts_api.>", ack_policy: AckPolicy.None }))).toBe(true);
    expect(await refused(js.consumers.get("OBJ_deploy_artifacts_api", { filter_subjects: "$O.deploy_artifacts_api.>" }).then((c) => c.next({ expires: 1000 })))).toBe(true);
    // Its own app's chunks are read by direct gets: no consumer there either (no state on the server).
    expect(await refused(jsm.consumers.add("OBJ_deploy_artifacts_web", { name: "mine", filter_subject: "$O.deploy_artifacts_web.>", ack_policy: AckPolicy.None }))).toBe(true);
    expect(await refused(js.consumers.get("OBJ_deploy_artifacts_web", { filter_subjects: "$O.deploy_artifacts_web.>" }).then((c) => c.next({ expires: 1000 })))).toBe(true);
    expect(await refused(jsm.streams.delete("OBJ_deploy_artifacts_web"))).toBe(true);
    expect(await refused(js.publish("$O.deploy_artifacts_web.C.x", "forged"))).toBe(true);
    // Nor the shared bucket of earlier versions.
    expect(await refused(jsm.streams.info("OBJ_deploy_artifacts"))).toBe(true);
    expect(stack.nats.logs()).toMatch(/Violation[^\n]*OBJ_deploy_artifacts_api/i);
  });

  it("a deployment of api sent to w1 fails there: the server refuses its download", { timeout: 120_000 }, async () => {
    const r = refs.api!;
    const d = await client.create({ requestId: uniq("r"), app: "api", environment: "prod", changeset: { version: "v2", artifact: { name: r.name, digest: r.digest } }, targets: ["w1"] });
    const done = await client.waitTerminal(d.id!);
    expect(done.state).toBe("DEPLOYMENT_STATE_FAILED");
    expect(done.targets?.[0]?.message).toMatch(/could not be fetched: .*permissions? violation/i);
    expect(await readlink(join(stack.rootOf("w1"), "api", "current")).catch(() => undefined)).toBeUndefined();
  });

  it("an artifact in the shared bucket of earlier versions is copied into the app's bucket by the first deployment naming it", { timeout: 120_000 }, async () => {
    const data = await bundle("web", "v3");
    const digest = sha(data);
    const legacy = await new Objm(admin).create("deploy_artifacts");
    await legacy.putBlob({ name: artifactObjectName("web", digest), metadata: { name: "web", digest, hooks: "start" } }, data);
    expect((await client.listArtifacts("web")).artifacts?.find((x) => x.digest === digest)?.app).toBe("");
    const d = await client.create({ requestId: uniq("r"), app: "web", environment: "prod", changeset: { version: "v3", artifact: { name: "web", digest } }, targets: ["w1"] });
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    expect(await readlink(join(stack.rootOf("w1"), "web", "current"))).toMatch(/^releases\/v3-/);
    expect((await client.getArtifact("web", digest, "web")).size).toBe(String(data.length));
    expect(stack.coordinators[0]!.logs()).toMatch(/artifact copied into its app's bucket/);
  });

  it("an agent whose credentials predate direct chunk reads downloads through a consumer, and says to re-run gen-credentials", async () => {
    const o1 = await connect({ servers: stack.nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(keys.o1!.seed)), inboxPrefix: "_INBOX_o1" });
    try {
      const warned: string[] = [];
      const log = { warn: (_o: unknown, msg: string) => void warned.push(msg) } as unknown as Logger;
      const js = jetstream(o1, { timeout: 1500 });
      const file = await fetchArtifact(o1, js, "web", join(dir, "o1-cache"), refs.web!, undefined, log);
      expect(sha(await readFile(file))).toBe(refs.web!.digest);
      expect(warned).toEqual([expect.stringMatching(/credentials from before them.*re-run gen-credentials/)]);
      // The next download goes straight to a consumer: no second refusal, no second warning.
      expect(sha(await readFile(await fetchArtifact(o1, js, "web", join(dir, "o1-cache-2"), refs.web!, undefined, log)))).toBe(refs.web!.digest);
      expect(warned).toHaveLength(1);
      expect(stack.nats.logs()).toMatch(/Violation[^\n]*DIRECT\.GET\.OBJ_deploy_artifacts_web/i);
    } finally {
      await o1.close();
    }
  });
});
