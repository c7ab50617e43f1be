// deployctl as a library (used by nothing else yet; the CLI is main.ts).
export { run, buildProgram } from "./program.js";
export { EXIT, type ExitCode } from "./errors.js";
