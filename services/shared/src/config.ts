// Config loading shared by both executables: convict schema → file from
// --config or an env var → environment overrides → validated, with an error
// naming the key.
import convict from "convict";
import { existsSync } from "node:fs";
import { DeployError } from "./errors.js";

export class ConfigError extends DeployError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/** `--config <file>` or `--config=<file>` from argv, else the env var. */
export function configFileFrom(argv: string[], envVar: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--config") return argv[i + 1];
    if (a.startsWith("--config=")) return a.slice("--config=".length);
  }
  return process.env[envVar] || undefined;
}

export function loadConfig<T>(schema: convict.Schema<T>, file: string | undefined, overrides?: Partial<T>): T {
  const conf = convict(schema);
  try {
    if (file) {
      if (!existsSync(file)) throw new Error(`config file ${file} does not exist`);
      conf.loadFile(file);
    }
    if (overrides) conf.load(overrides);
    conf.validate({ allowed: "strict" });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  return conf.getProperties();
}
