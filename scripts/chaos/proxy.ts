// A TCP proxy between one agent and NATS that the suite controls: it can cut
// the link (drop every connection and refuse new ones for a while) or stall
// it (hold every byte in both directions, then deliver them late). With a
// cluster it forwards to the first upstream that accepts.
import { connect, createServer, type Server, type Socket } from "node:net";

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

  constructor(private readonly upstreams: () => number[]) {}

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
    const forward = (from: Socket, to: Socket): void => {
      from.on("data", (b: Buffer) => {
        if (this.#stalled) {
          const q = this.#held.get(to) ?? [];
          q.push(b);
          this.#held.set(to, q);
        } else if (!to.destroyed) to.write(b);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
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
