#!/usr/bin/env node
// deployctl: the operator's command line for the deployment coordinator.
import { readFileSync } from "node:fs";
import { endQuietlyWhenOutputCloses } from "./output.js";
import { run } from "./program.js";

function packageVersion(): string {
  try {
    // dist/services/deployctl/src/main.js and services/deployctl/src/main.ts are both four levels below package.json.
    const url = new URL("../../../package.json", import.meta.url);
    const pkgUrl = url.pathname.includes("/dist/") ? new URL("../../../../package.json", import.meta.url) : url;
    return (JSON.parse(readFileSync(pkgUrl, "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

endQuietlyWhenOutputCloses();
const code = await run(process.argv.slice(2), packageVersion());
process.exitCode = code;
// Open handles (a gRPC channel closing, a timer) must not hold the exit up.
setTimeout(() => process.exit(code), 1000).unref();
