// Where the built services are, for the scripts and tests that start them.
// This file runs as scripts/lib/paths.ts (tests) or dist/scripts/lib/paths.js.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The package root: the nearest directory above this file with a package.json. */
export function packageRoot(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return resolve(import.meta.dirname, "../..");
}

export const ROOT = packageRoot();
export const COORDINATOR_MAIN = join(ROOT, "dist/services/coordinator/src/main.js");
export const AGENT_MAIN = join(ROOT, "dist/services/agent/src/main.js");
