// A TCP proxy between one agent and NATS that the suite controls: it can cut
// the link (drop every connection and refuse new ones for a while) or stall
// it (hold every byte in both directions, then deliver them late). With a
// cluster it forwards to the first upstream that accepts. With
// `dropRaceReplies` (the lost-race-reply fault) it reads the NATS protocol
// both ways and drops the server's acknowledgement of each target.started
// the agent publishes: the server stored the event, the agent never hears
// so (an error reply, which stored nothing, goes through).
import { connect, createServer, type Server, type Socket } from "node:net";
import { NatsFramer, type Frame } from "./natsFrames.js";

export interface DropRaceReplies {
  agentId: string;
  /** Called with the deployment of each reply dropped. */
  onDrop: (deploymentId: string) => void;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

export class LinkProxy {
  #server: Server | undefined;
  #pairs = new Set<Pair>();
  #cutUntil = 0;
  #stalled = false;
  #held = new Map<Socket, Buffer[]>();
  #next = 0;
  port = 0;

  constructor(
    private readonly upstreams: () => number[],
    private readonly dropRaceReplies?: DropRaceReplies,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    await new Promise<void>((res, rej) => {
      server.once("error", rej);
      server.listen({ host: "127.0.0.1", port: 0 }, () => res());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  #accept(client: Socket): void {
    client.on("error", () => undefined);
    if (Date.now() < this.#cutUntil) {
      client.destroy();
      return;
    }
    const ports = this.upstreams();
    const start = this.#next++;
    const tryPort = (i: number): void => {
      if (i >= ports.length || client.destroyed) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: "127.0.0.1", port: ports[(start + i) % ports.length]! });
      let connected = false;
      upstream.once("connect", () => {
        connected = true;
        this.#pipe(client, upstream);
      });
      upstream.on("error", () => {
        if (!connected) tryPort(i + 1);
      });
    };
    client.pause();
    tryPort(0);
  }

  #pipe(client: Socket, upstream: Socket): void {
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const send = (to: Socket, b: Buffer): void => {
      if (this.#stalled) {
        const q = this.#held.get(to) ?? [];
        q.push(b);
        this.#held.set(to, q);
      } else if (!to.destroyed) to.write(b);
    };
    const drop = this.dropRaceReplies;
    if (!drop) {
      client.on("data", (b: Buffer) => send(upstream, b));
      upstream.on("data", (b: Buffer) => send(client, b));
    } else {
      // Reply subject of each target.started publish → its deployment.
      const awaited = new Map<string, string>();
      const started = new RegExp(`^deploy\\.evt\\.([^.]+)\\.${drop.agentId}$`);
      const up = new NatsFramer();
      const down = new NatsFramer();
      client.on("data", (b: Buffer) => {
        for (const f of up.push(b)) {
          const dep = f.op === "HPUB" && f.reply ? isStarted(f, started) : undefined;
          if (dep !== undefined) awaited.set(f.reply!, dep);
          send(upstream, f.bytes);
        }
      });
      upstream.on("data", (b: Buffer) => {
        for (const f of down.push(b)) {
          const dep = (f.op === "MSG" || f.op === "HMSG") && f.subject ? awaited.get(f.subject) : undefined;
          if (dep !== undefined) {
            awaited.delete(f.subject!);
            // Only the acknowledgement of a stored event is lost: an error
            // (a retry's append refused because the first one was stored)
            // goes through. Dropped too, every retry of a race waited out
            // the publish timeout, and seed 115232 (the server killed and
            // its JetStream slow to come back meanwhile) ended its run
            // before the agent had found its own start.
            if (!f.bytes.includes('"error"')) {
              drop.onDrop(dep);
              continue;
            }
          }
          send(client, f.bytes);
        }
      });
    }
    const close = (): void => {
      this.#pairs.delete(pair);
      this.#held.delete(client);
      this.#held.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.once("close", close);
    upstream.once("close", close);
    client.resume();
  }

  /** Drops every connection and refuses new ones for `ms`. */
  cut(ms: number): void {
    this.#cutUntil = Date.now() + ms;
    for (const p of [...this.#pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }

  /** Holds all traffic for `ms`, then delivers it. */
  async stall(ms: number): Promise<void> {
    this.#stalled = true;
    await new Promise((r) => setTimeout(r, ms));
    this.#stalled = false;
    for (const [to, q] of this.#held) if (!to.destroyed) for (const b of q) to.write(b);
    this.#held.clear();
  }

  async close(): Promise<void> {
    for (const p of [...this.#pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise<void>((res) => (this.#server ? this.#server.close(() => res()) : res()));
  }
}

/** The deployment of a target.started publish (its subject and its Deploy-Event header), or undefined. */
function isStarted(f: Frame, subject: RegExp): string | undefined {
  const m = subject.exec(f.subject ?? "");
  if (!m) return undefined;
  return /^Deploy-Event:\s*target\.started\s*$/im.test(f.headers) ? m[1] : undefined;
}
