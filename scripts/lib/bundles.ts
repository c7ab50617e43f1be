// Builds real changeset bundles (gzip'd tar) entry by entry, for the tests
// and the fault suite (scripts/chaos/bundle.ts), so a test can produce
// exactly the hostile archive it wants (traversal, devices, links): things
// `tar` on the command line refuses to create.
import fs from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import zlib from "node:zlib";
import tar from "tar-stream";

export type BundleEntry =
  | { name: string; type?: "file"; content: string | Buffer; mode?: number }
  /** A file of `size` zero bytes, streamed (never held in memory whole). */
  | { name: string; type: "zeros"; size: number; mode?: number }
  | { name: string; type: "directory"; mode?: number }
  | { name: string; type: "symlink" | "link"; target: string }
  | { name: string; type: "character-device" | "block-device" | "fifo" };

export interface BundleOptions {
  /** Default true; false gives a plain tar. */
  gzip?: boolean;
}

/** A minimal valid bundle: deploy.yaml plus executable bash hooks. */
export function script(body: string): string {
  return `#!/usr/bin/env bash\nset -u\n${body}\n`;
}

export async function makeBundle(entries: BundleEntry[], opts: BundleOptions = {}): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  const collecting = (async () => {
    const stream = pack.pipe(opts.gzip === false ? new PassThrough() : zlib.createGzip());
    for await (const chunk of stream as AsyncIterable<Buffer>) out.push(chunk);
  })();
  for (const e of entries) await addEntry(pack, e);
  pack.finalize();
  await collecting;
  return Buffer.concat(out);
}

function addEntry(pack: tar.Pack, e: BundleEntry): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    const type = e.type ?? "file";
    switch (e.type) {
      case undefined:
      case "file":
        pack.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.content, cb);
        return;
      case "zeros": {
        const w = pack.entry({ name: e.name, mode: e.mode ?? 0o644, size: e.size }, cb);
        const chunk = Buffer.alloc(64 * 1024);
        let left = e.size;
        const write = (): void => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!w.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              w.once("drain", () => write());
              return;
            }
          }
          w.end(undefined); // streamx's typings insist on an argument
        };
        write();
        return;
      }
      case "directory":
        pack.entry({ name: e.name, type: "directory", mode: e.mode ?? 0o755 }, cb);
        return;
      case "symlink":
      case "link":
        pack.entry({ name: e.name, type: e.type, linkname: e.target }, cb);
        return;
      default:
        pack.entry({ name: e.name, type: type as "fifo", mode: 0o644, devmajor: 1, devminor: 3 }, cb);
    }
  });
}

/** Writes the bundle to `<dir>/<random>.tar.gz` and returns its path. */
export async function writeBundle(dir: string, entries: BundleEntry[], opts: BundleOptions = {}): Promise<string> {
  const file = path.join(dir, `bundle-${randomBytes(4).toString("hex")}.tar.gz`);
  await fs.writeFile(file, await makeBundle(entries, opts));
  return file;
}
