// The coordinator's HTTP server (off unless http.listen is set): the built
// web dashboard plus its JSON and Server-Sent Events API (api.ts). It reads
// what the gRPC API reads, through the same functions; nothing else.
import { createServer, type Server } from "node:http";
import { handleApi, type ApiDeps } from "./api.js";
import { errorResponse, sendJson } from "./respond.js";
import { defaultAssetsDir, loadAssets } from "./static.js";

/** What the API needs is all the server needs. */
export type HttpServerDeps = ApiDeps;

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

// The page loads only its own files and talks only to this origin.
const PAGE_HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

export async function startHttpServer(config: { listen: string; assetsDir: string }, deps: HttpServerDeps): Promise<HttpServer> {
  const { log } = deps;
  const assetsDir = config.assetsDir || defaultAssetsDir();
  const assets = loadAssets(assetsDir);
  if (!assets.has("/")) log.warn({ assetsDir }, "dashboard assets not found (npm run build); serving the API only");
  if (!deps.auth.enabled) log.warn("dashboard without authentication: anyone who reaches the port can see deployments (read-only); set grpc.tokens");

  const server: Server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://dashboard.invalid");
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (url.pathname === "/api" || url.pathname.startsWith("/api/")) {
      handleApi(deps, req, res, url).catch((err: unknown) => {
        const { status, body } = errorResponse(err);
        log.info({ method: req.method, path: url.pathname, status, error: body.error, ...(status >= 500 ? { err } : {}) }, "http request failed");
        if (res.headersSent) res.end();
        else sendJson(res, status, body);
      });
      return;
    }
    const asset = assets.get(url.pathname);
    if (!asset || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(asset ? 405 : 404, { "Content-Type": "text/plain; charset=utf-8", ...PAGE_HEADERS });
      res.end(assets.has("/") ? "not found\n" : "dashboard assets not built: run `npm run build`; the API is under /api/\n");
      return;
    }
    res.writeHead(200, {
      "Content-Type": asset.type,
      "Content-Length": String(asset.body.length),
      "Cache-Control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
      ...PAGE_HEADERS,
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
  });
  const at = config.listen.lastIndexOf(":");
  const host = config.listen.slice(0, at).replace(/^\[|\]$/g, "");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(config.listen.slice(at + 1)), host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  // Not "listen": test/helpers/stack.ts finds the gRPC address by that key.
  log.info({ dashboard: `http://${host.includes(":") ? `[${host}]` : host}:${port}/` }, "dashboard listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Event streams have ended on shutdown; idle keep-alive sockets go now.
        server.closeAllConnections();
      }),
  };
}
