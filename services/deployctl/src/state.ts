// The last event sequence deployctl printed for each deployment, so that
// `deployctl watch <id>` resumes where a killed or interrupted follow left
// off: $XDG_STATE_HOME/deployctl/<id>, else ~/.local/state/deployctl/<id>.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith("/") ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(base, "deployctl");
}

export class FollowState {
  readonly file: string;
  constructor(deploymentId: string, dir = stateDir()) {
    this.file = join(dir, deploymentId);
  }

  /** The last sequence printed, 0 when unknown (or the file is unreadable). */
  load(): number {
    try {
      const v = (JSON.parse(readFileSync(this.file, "utf8")) as { lastSequence?: unknown }).lastSequence;
      return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Written after each printed event: write + rename so a SIGKILL leaves the
   * old or the new value, never a torn file. Not fsync'd: losing the last
   * few after a power cut only means a few events are printed again.
   */
  save(lastSequence: number): void {
    try {
      mkdirSync(join(this.file, ".."), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ lastSequence, savedAt: new Date().toISOString() }) + "\n");
      renameSync(tmp, this.file);
    } catch {
      // A read-only home must not stop a deploy: resuming then starts from the beginning.
    }
  }
}
