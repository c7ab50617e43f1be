// The built dashboard (dist/dashboard, from `npm run build`), read once at
// start into memory: a few small files, and nothing outside the directory
// can ever be served.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, relative, resolve, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export interface Asset {
  type: string;
  body: Buffer;
  /** Vite puts a content hash in the names under assets/: cacheable for ever. */
  immutable: boolean;
}

/** dist/dashboard of this package (this file runs as dist/services/coordinator/src/http/static.js). */
export function defaultAssetsDir(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "dashboard");
    dir = dirname(dir);
  }
  return resolve(import.meta.dirname, "../../../../dashboard");
}

/** URL path ("/", "/assets/x.js") → asset; empty when the directory is missing. */
export function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  if (!existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const file = join(d, name);
      if (statSync(file).isDirectory()) {
        walk(file);
        continue;
      }
      const type = TYPES[extname(name).toLowerCase()];
      if (!type) continue;
      const path = `/${relative(dir, file).split(sep).join("/")}`;
      out.set(path, { type, body: readFileSync(file), immutable: path.startsWith("/assets/") });
    }
  };
  walk(dir);
  const index = out.get("/index.html");
  if (index) out.set("/", index);
  return out;
}
