// The NATS servers' routes are encrypted and mutually authenticated in every
// setup we ship (DESIGN.md invariant 8): gen-credentials writes a route
// certificate and route-tls.conf, which the production config, the compose
// configs and `npm run cluster` include inside their cluster block. Here,
// on real nats-servers: the production config with the generated files is
// accepted by nats-server; three nodes with route-tls.conf form a JetStream
// cluster; and a server that dials a node's route port without TLS, or with
// a certificate another CA signed, is not routed.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCredentials } from "../scripts/gen-credentials.js";
import { CLUSTER_NAME, NatsCluster } from "../scripts/cluster/natsCluster.js";
import { ROOT } from "../scripts/lib/paths.js";
import { findNatsServerBinary, freePorts, natsConfig, NatsServer } from "../scripts/lib/natsServer.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A credentials directory of its own CA. */
function credentials(dir: string): void {
  generateCredentials({ out: dir, agents: [{ id: "a1", environment: "prod", apps: ["web"] }], coordinators: 1, tlsHosts: ["localhost", "127.0.0.1"] });
}

/** The names of the servers `node` has a route to (its /routez). */
async function routedPeers(monitorUrl: string): Promise<string[]> {
  const res = await fetch(`${monitorUrl}/routez`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { routes?: { remote_name?: string }[] };
  return [...new Set((body.routes ?? []).map((r) => r.remote_name ?? "?"))].sort();
}

describe("route TLS (gen-credentials' route-tls.conf)", () => {
  const dir = mkdtempSync(join(tmpdir(), "route-tls-"));
  const creds = join(dir, "creds");
  const other = join(dir, "other-ca");
  let cluster: NatsCluster | undefined;
  const rogues: NatsServer[] = [];

  beforeAll(() => {
    credentials(creds);
    credentials(other);
  });
  afterAll(async () => {
    await Promise.all(rogues.map((r) => r.stop()));
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the production config with the generated files is a valid nats-server config", () => {
    // Next to the generated files, as production.md says to put it.
    copyFileSync(join(ROOT, "deploy/nats/nats-server.prod.conf"), join(creds, "nats-server.conf"));
    // -t: parse the config and every file it includes, then exit (non-zero on an error, which throws here).
    execFileSync(findNatsServerBinary(), ["-c", join(creds, "nats-server.conf"), "-t"], { stdio: ["ignore", "pipe", "pipe"] });
  });

  it("three nodes with route-tls.conf form a JetStream cluster; a peer without TLS, or with another CA's certificate, is not routed", { timeout: 120_000 }, async () => {
    const secured = {
      extraConfig: [await readFile(join(creds, "authorization.conf"), "utf8"), await readFile(join(creds, "tls.conf"), "utf8")].join("\n"),
      clusterExtra: await readFile(join(creds, "route-tls.conf"), "utf8"),
    };
    // A meta leader that all three agree on: the routes are up, over TLS.
    cluster = await NatsCluster.start(join(dir, "cluster"), 3, secured);
    const n1 = cluster.node("n1");
    expect(await routedPeers(n1.monitorUrl)).toEqual(["n2", "n3"]);

    // Two servers of the same cluster name dial n1's route port: one with no
    // route TLS, one presenting a route certificate of another CA and
    // trusting whatever n1 presents (insecure), so only n1's check of its
    // peer's certificate (verify) keeps it out.
    const otherRoutes = (await readFile(join(other, "route-tls.conf"), "utf8")).replace("verify: true", "insecure: true");
    for (const [name, extra] of [
      ["plain", undefined],
      ["foreign", otherRoutes],
    ] as const) {
      const [port, routePort] = await freePorts(2);
      const storeDir = join(dir, name, "jetstream");
      mkdirSync(storeDir, { recursive: true });
      const file = join(dir, name, "nats-server.conf");
      writeFileSync(
        file,
        natsConfig({ serverName: name, port: port!, storeDir, cluster: { name: CLUSTER_NAME, port: routePort!, routes: [n1.routePort], ...(extra ? { extra } : {}) } }),
      );
      const rogue = new NatsServer(port!, ["-c", file], { name: `nats-${name}` });
      rogues.push(rogue);
      await rogue.start();
    }
    // A route is dialled again every second or so: give them several tries.
    await sleep(5000);
    expect(await routedPeers(n1.monitorUrl)).toEqual(["n2", "n3"]);
    // Refused for what each lacked: TLS, and a certificate of our CA.
    expect(n1.proc.logs()).toMatch(/TLS route handshake error: tls: first record does not look like a TLS handshake/);
    expect(n1.proc.logs()).toMatch(/TLS route handshake error: .*certificate signed by unknown authority/);
    for (const r of rogues) expect(r.running, `${r.proc.name} still runs, unrouted`).toBe(true);
  });
});
