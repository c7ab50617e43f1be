// Three (or more) nats-servers clustered on loopback ports, JetStream on,
// each with its own store dir and a config file written next to it:
//
//   server_name: n1                      # required for JetStream clustering
//   listen: 127.0.0.1:<client port>
//   http: 127.0.0.1:<monitor port>       # /healthz, /jsz (meta leader)
//   jetstream { store_dir: <dir>/n1/jetstream, sync_interval: always }
//   cluster { name: deploy-local, listen: 127.0.0.1:<route port>, routes: [every peer] }
//                                        # secured (npm run cluster): and route-tls.conf's tls block
//
// `sync_interval: always` as in the compose files and the production config:
// the local cluster and the cluster tests run the durability setting we ship.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sleep } from "../lib/childProc.js";
import { findNatsServerBinary, freePorts, natsConfig, NatsServer } from "../lib/natsServer.js";

export const CLUSTER_NAME = "deploy-local";

/** One node: a nats-server in its own process group (a Ctrl-C reaches only the launcher), output kept in `proc`. */
export class NatsNode extends NatsServer {
  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly routePort: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    readonly configFile: string,
    bin: string,
  ) {
    super(clientPort, ["-c", configFile], { name: `nats-${name}`, bin, detached: true, readyTimeoutMs: 15_000, graceMs: 10_000, maxLogChars: 512 * 1024 });
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.monitorPort}`;
  }

  /** The JetStream meta leader this node knows of, or undefined (not elected yet, or not answering). */
  async metaLeader(): Promise<string | undefined> {
    try {
      const res = await fetch(`${this.monitorUrl}/jsz`, { signal: AbortSignal.timeout(2000) });
      if (!res.ok) return undefined;
      const body = (await res.json()) as { meta_cluster?: { leader?: string } };
      return body.meta_cluster?.leader || undefined;
    } catch {
      return undefined;
    }
  }
}

/** `clusterExtra`: lines inside the cluster block (the secured cluster: gen-credentials' route-tls.conf). */
export function nodeConfig(n: { name: string; clientPort: number; routePort: number; monitorPort: number; storeDir: string }, peers: number[], clusterExtra?: string): string {
  return natsConfig({
    serverName: n.name,
    port: n.clientPort,
    monitorPort: n.monitorPort,
    storeDir: n.storeDir,
    cluster: { name: CLUSTER_NAME, port: n.routePort, routes: peers, ...(clusterExtra ? { extra: clusterExtra } : {}) },
  });
}

export class NatsCluster {
  private constructor(readonly nodes: NatsNode[]) {}

  /**
   * Writes the config files and starts every node; waits until a meta leader
   * is elected that all nodes agree on. `extraConfig` is appended to every
   * node's config and `clusterExtra` put inside its cluster block (the
   * secured cluster: gen-credentials' authorization and tls blocks for
   * clients, and its route-tls block for the routes).
   */
  static async start(dir: string, size = 3, opts: { extraConfig?: string; clusterExtra?: string } = {}): Promise<NatsCluster> {
    const bin = findNatsServerBinary();
    const ports = await freePorts(size * 3);
    const specs = Array.from({ length: size }, (_, i) => ({
      name: `n${i + 1}`,
      clientPort: ports[i * 3]!,
      routePort: ports[i * 3 + 1]!,
      monitorPort: ports[i * 3 + 2]!,
      storeDir: join(dir, `n${i + 1}`, "jetstream"),
    }));
    const nodes: NatsNode[] = [];
    for (const s of specs) {
      await mkdir(s.storeDir, { recursive: true });
      const configFile = join(dir, s.name, "nats-server.conf");
      // Every peer, itself included: a server ignores a route to itself, and
      // identical route lists are what an operator would template.
      await writeFile(configFile, nodeConfig(s, specs.map((p) => p.routePort), opts.clusterExtra) + (opts.extraConfig ?? ""));
      nodes.push(new NatsNode(s.name, s.clientPort, s.routePort, s.monitorPort, s.storeDir, configFile, bin));
    }
    const cluster = new NatsCluster(nodes);
    try {
      await Promise.all(nodes.map((n) => n.start()));
      await cluster.waitForMetaLeader(30_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Client URLs of every node, comma separated, the form NATS_URL takes. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  node(name: string): NatsNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no NATS node ${name}`);
    return n;
  }

  /** Waits until every running node names the same JetStream meta leader; returns its name. */
  async waitForMetaLeader(timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const running = this.nodes.filter((n) => n.running);
      if (running.length === 0) throw new Error(`no NATS node is running:\n${this.nodes.map((n) => n.proc.tail(5)).join("\n")}`);
      const leaders = await Promise.all(running.map((n) => n.metaLeader()));
      const first = leaders[0];
      if (first !== undefined && leaders.every((l) => l === first)) return first;
      if (Date.now() > until) throw new Error(`no JetStream meta leader agreed on within ${timeoutMs} ms (saw ${JSON.stringify(leaders)})`);
      await sleep(250);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
