// Command-line parsing for the scripts (bench, chaos, cluster, demo): --help
// prints the usage and exits 0; an unknown option or a bad value prints one
// line naming it, then the usage, and exits 2, never a stack trace.
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCli<O extends Options, P extends boolean = false>(name: string, usage: string, options: O, allowPositionals?: P) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, allowPositionals: (allowPositionals ?? false) as P, strict: true });
  } catch (err) {
    return usageError(name, usage, (err as Error).message);
  }
}

/** A bad argument found after parsing (a value out of range): the same one line and usage, exit 2. */
export function usageError(name: string, usage: string, message: string): never {
  process.stderr.write(`${name}: ${message}\n${usage}\n`);
  process.exit(2);
}
