// What an idle agent loads: the packages reachable from its entry point
// through static imports (import/export … from, not `import type` and not
// import()). The bundle code (tar-stream, yaml, the object store client)
// is loaded at the first apply of a bundle: importing it at start cost each
// agent ~6 MB of RSS (idle agent 58.9-61.8 MB → 52.6-53.9 MB, bench
// footprint, three runs each), and every spawn of a process that hosts
// agents pays for its size (a fork copies its page tables).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

/** Bare package names reachable from `entry` (a .ts file) through static, non-type imports. */
function staticPackages(entry: string): { packages: Set<string>; files: Set<string> } {
  const packages = new Set<string>();
  const files = new Set<string>();
  const queue = [entry];
  // `import x from "m"`, `import { a } from "m"`, `import "m"`, `export * from "m"`, `export { a } from "m"`; not `import type`/`export type`.
  const re = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']/gm;
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(re)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) queue.push(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
      else if (!spec.startsWith("node:")) packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  }
  return { packages, files };
}

describe("the agent's start", () => {
  it("loads no bundle code, gRPC or protobuf: those wait for the first apply of a bundle, or are not the agent's", () => {
    const { packages, files } = staticPackages(resolve(ROOT, "services/agent/src/main.ts"));
    expect(files.size, "the walk found the agent's modules").toBeGreaterThan(20);
    expect([...packages].sort()).toContain("@nats-io/transport-node");
    for (const p of ["tar-stream", "yaml", "@nats-io/obj", "@grpc/grpc-js", "@grpc/proto-loader", "protobufjs"]) {
      expect(packages.has(p), `${p} is imported statically from the agent's entry point (${[...packages].sort().join(", ")})`).toBe(false);
    }
  });
});
