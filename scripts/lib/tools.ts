// The pinned nats-server, nats CLI, grpcurl and grpc-health-probe, built by
// scripts/tools.sh into a cache outside the repository (the versions are
// named there and only there). Tests, the demo, the bench and the local
// cluster all run these binaries, never whatever is on PATH.
import { execFileSync } from "node:child_process";
import { delimiter, join } from "node:path";
import { ROOT } from "./paths.js";

let binDir: string | undefined;

/**
 * The tools' bin directory: runs `scripts/tools.sh --path`, which builds
 * what is missing (about 3 minutes the first time, with Go and the module
 * proxy) and otherwise answers at once. Memoised per process.
 */
export function toolsBinDir(): string {
  if (binDir !== undefined) return binDir;
  const fromEnv = process.env["DEPLOY_TOOLS_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") return (binDir = fromEnv);
  try {
    binDir = execFileSync("bash", [join(ROOT, "scripts/tools.sh"), "--path"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
  } catch (err) {
    throw new Error(`scripts/tools.sh could not provide the pinned tools (nats-server, nats, grpcurl): ${(err as Error).message}`, {
      cause: err,
    });
  }
  return binDir;
}

/** Absolute path of one pinned tool. */
export function toolPath(name: "nats-server" | "nats" | "grpcurl" | "grpc-health-probe"): string {
  return join(toolsBinDir(), name);
}

/** PATH with the tools' bin directory first, for child processes and shells. */
export function pathWithTools(path = process.env["PATH"] ?? ""): string {
  return [toolsBinDir(), ...path.split(delimiter).filter((d) => d !== "")].join(delimiter);
}
