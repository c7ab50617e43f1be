// When the reader of deployctl's output goes away (`deployctl watch <id> |
// head -n 1`, a pager quit early), the next write fails with EPIPE: Node
// ignores SIGPIPE, so without a listener the stream's 'error' event ends the
// process with a stack trace. deployctl ends quietly instead, whichever
// command was printing.
//
// Exit status 141 (128 + SIGPIPE), not 0: it is what the shell reports for
// any Unix tool the closed pipe killed (`seq 1000000 | head -n 1` under
// `set -o pipefail`), and deployctl's 0 means "the deployment SUCCEEDED",
// which deployctl cannot claim once it stopped following. Without pipefail
// a pipeline's status is its last command's, so `... | head` stays 0.
// Nothing is cancelled: the deployment goes on, and the last event printed
// is in the state file, so `deployctl watch <id>` resumes after it.
import { EXIT } from "./errors.js";

export function endQuietlyWhenOutputCloses(stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): void {
  stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.OUTPUT_CLOSED);
    // Another write error (EIO, ENOSPC on a redirect): one line, not a stack.
    try {
      stderr.write(`deployctl: cannot write to stdout: ${err.code ?? err.message}\n`);
    } finally {
      process.exit(EXIT.FAILED);
    }
  });
  // stderr gone too (`2>&1 | head`): nothing left to tell anyone.
  stderr.on("error", (err: NodeJS.ErrnoException) => process.exit(err.code === "EPIPE" ? EXIT.OUTPUT_CLOSED : EXIT.FAILED));
}
