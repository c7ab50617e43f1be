// Serves a prom-client registry on GET /metrics (Prometheus text format).
// Off unless a listen address is configured: a VM may run several agents and
// tests run many processes, so no port is taken by default.
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import type { Logger } from "./log.js";

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(listen: string, registry: Registry, log: Logger): Promise<MetricsServer> {
  const at = listen.lastIndexOf(":");
  const host = listen.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(listen.slice(at + 1));
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found: GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "Content-Type": registry.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err }, "metrics collection failed");
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  log.info({ listen: `${host}:${bound}` }, "metrics listening");
  return {
    port: bound,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
