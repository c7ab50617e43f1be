// The agent's durable journal: what it started, finished, declined and
// reported, so that after a crash or restart it never applies a deployment
// twice (at-most-once) and still reports every outcome.
//
// Format: append-only JSON lines in <stateDir>/journal.jsonl, one record per
// state change, e.g.
//   {"v":1,"op":"started","deploymentId":"d-1","at":"2025-01-01T00:00:00.000Z"}
// Every append is durable before its promise resolves, so a resolved
// markStarted() means the record survives power loss: the file is opened
// with O_DSYNC, so each record is one write that returns once its data (and
// the file size) is on disk, where a write and an fdatasync were two trips
// through libuv's thread pool and the event loop. "reported" records,
// written without an fdatasync before, are durable now too (one disk flush
// more per apply, after its result). A CPU profile of the bench's fan-out
// of 100 (one process hosting the 100 agents) put 71 ms of the host's
// event loop in journal file calls over 200 applies.
//
// Beside it, <stateDir>/journal.key: a random key made with the journal
// (and again whenever journal.jsonl is missing), from which the agent
// derives the journal part of each start's nonce (startNonce;
// js/raceForTarget.ts RaceNonce). A start found stored with that part,
// which the journal does not record, was stored by this agent with this
// journal, which crashed before its "started" record was durable: nothing
// ran. A lost journal loses its key with it, so a start of
// an earlier journal is never taken for one of this journal's.
//
// A started record names the release the apply installs if it succeeds
// (`release`): the agent writes its registry entry with a new release at
// its next heartbeat, not beside the result (handleCommand.ts), so at a
// restart the journal, not the entry, says what each app runs
// (currentReleases). Older agents ignore the field.
//
// Compaction (keepMs): a deployment leaves three lines (started, finished,
// reported), ~550 bytes on disk and ~500 bytes of heap, read whole at every
// start: 100,000 deployments made a 55 MB file that took 562 ms and 344 MB
// of RSS to open. The journal rewrites itself without the entries no longer
// needed, at open and after every COMPACT_CHECK_EVERY records appended, when
// at least COMPACT_MIN_DROPPED would go (compact()). Kept: an entry started
// and not finished (recovery), one not reported, one first recorded within
// keepMs (a command still in DEPLOY_COMMANDS may be delivered again: keepMs
// must be longer than the coordinator's streams.commandsMaxAgeMs), and what
// currentReleases() reads. A command delivered again after its entry went
// still runs nothing: its race finds the target's subject holding that
// start and its end, and the agent declines.
import { createHmac, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { AgentRelease } from "../../shared/src/index.js";

export type JournalResult = {
  outcome: "SUCCEEDED" | "FAILED";
  message: string;
  /** A bundle apply failed after the switch and went back to the previous release. */
  rolledBack?: boolean;
  exitCode: number | null;
  durationMs: number;
  finishedAt: string;
};

/** What a started apply installs if it succeeds: `app` then runs `release`. */
export type JournalRelease = AgentRelease & { app: string };

export interface JournalEntry {
  deploymentId: string;
  /** The release the apply installs if it succeeds (absent in records of older agents). */
  release?: JournalRelease;
  /** declined = decided not to apply (deployment no longer active); nothing ran. */
  status: "started" | "finished" | "declined";
  startedAt?: string;
  /** Set when finished. */
  result?: JournalResult;
  declineReason?: string;
  /** Declined after this agent's own start won the target's race (its look after the race said no): nothing ran. */
  declinedAfterStart?: boolean;
  /** The result/decline event was acknowledged by JetStream. */
  reported: boolean;
}

export interface JournalOptions {
  /** Told about recoverable damage (a torn last line). Defaults to process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Entries first recorded longer ago than this may be dropped by compaction (compact()); unset: none is. */
  keepMs?: number;
  /** Told what a compaction dropped, or why it failed. */
  onCompacted?: (outcome: CompactionOutcome) => void;
}

/** What a compaction did: entries dropped and kept, bytes after; or the error that left the journal as it was. */
export type CompactionOutcome = { dropped: number; kept: number; bytes: number } | { error: unknown; refusesAppends: boolean };

/** A compaction rewrites the file only when it drops at least this many entries. */
export const COMPACT_MIN_DROPPED = 500;
/** Appends between two looks for what a compaction would drop. */
const COMPACT_CHECK_EVERY = 256;

export class JournalCorruptError extends Error {
  readonly code = "JOURNAL_CORRUPT";
  override readonly name = "JournalCorruptError";
  constructor(
    readonly file: string,
    readonly lineNumber: number,
    reason: string,
  ) {
    super(`${file}:${lineNumber}: ${reason}`);
  }
}

/** The requested transition is not allowed from the entry's current state. */
export class JournalStateError extends Error {
  readonly code = "JOURNAL_STATE";
  override readonly name = "JournalStateError";
}

export class JournalClosedError extends Error {
  readonly code = "JOURNAL_CLOSED";
  override readonly name = "JournalClosedError";
}

/**
 * A write or fsync failed. The bytes on disk are then unknown, so the
 * journal refuses all further appends (fail-stop) rather than risk a
 * record that is believed durable but is not.
 */
export class JournalWriteError extends Error {
  readonly code = "JOURNAL_WRITE";
  override readonly name = "JournalWriteError";
}

const FILE_NAME = "journal.jsonl";
/**
 * Append-only, each write durable when it returns (O_DSYNC: its data and
 * the file size, what fdatasync flushes). Where the platform has no
 * O_DSYNC, each write is followed by an fdatasync instead.
 */
const SYNC_PER_WRITE = fsConstants.O_DSYNC !== undefined;
const APPEND_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | (fsConstants.O_DSYNC ?? 0);
const KEY_FILE_NAME = "journal.key";
const KEY_BYTES = 32;
const VERSION = 1;

type JournalRecord =
  | { v: 1; op: "started"; deploymentId: string; at: string; release?: JournalRelease }
  | { v: 1; op: "finished"; deploymentId: string; at: string; result: JournalResult }
  | { v: 1; op: "declined"; deploymentId: string; at: string; reason: string; afterStart?: true }
  | { v: 1; op: "reported"; deploymentId: string; at: string };

export class Journal {
  private readonly state: Map<string, JournalEntry>;
  // Appends run one after another on this chain, so bytes never interleave
  // and each transition is checked against the state all earlier appends left.
  private queue: Promise<void> = Promise.resolve();
  // Set by close(); later appends reject instead of racing the fd close.
  private closed: Promise<void> | undefined;
  private writeFailure: unknown;
  /** Appends asked since the last look for what a compaction would drop. */
  private sinceCompactCheck = 0;

  private constructor(
    private readonly file: string,
    private fd: FileHandle,
    state: Map<string, JournalEntry>,
    /** When each entry's first record was written (ms since the epoch; NaN when its time is unreadable). */
    private readonly firstAt: Map<string, number>,
    private readonly key: Buffer,
    private readonly options: JournalOptions,
  ) {
    this.state = state;
  }

  static async open(stateDir: string, options: JournalOptions = {}): Promise<Journal> {
    const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, { code: "JOURNAL_TORN_TAIL" }));
    await fs.mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, FILE_NAME);

    let content: Buffer | undefined;
    try {
      content = await fs.readFile(file);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
    }

    const parsed: Parsed = content
      ? parse(file, content)
      : { state: new Map<string, JournalEntry>(), firstAt: new Map<string, number>(), goodBytes: 0, tornLine: undefined, missingNewline: false };
    // What a compaction cut short by a crash left: the journal itself is whole.
    await fs.rm(compactionFile(file), { force: true });

    // A new journal gets a new key, whatever key file is left: a start
    // stored under an old key is then never taken for this journal's.
    const key = content === undefined ? undefined : await readKey(stateDir);
    const madeKey = key ?? (await writeKey(stateDir));
    const fd = await fs.open(file, APPEND_FLAGS);
    try {
      if (content === undefined || key === undefined) {
        // New directory entries are only durable once the directory is synced.
        await syncDir(stateDir);
      }
      if (parsed.tornLine !== undefined) {
        warn(`${file}:${parsed.tornLine}: ignoring torn last line (incomplete write before a crash)`);
        // Cut the fragment off, or the next append would be glued onto it
        // and turn a harmless torn tail into a corrupt line mid-file.
        await fd.truncate(parsed.goodBytes);
        await fd.datasync();
      } else if (parsed.missingNewline) {
        // The last record is complete but its newline never made it to disk.
        await fd.write("\n");
        await fd.datasync();
      }
    } catch (err) {
      await fd.close();
      throw err;
    }
    const journal = new Journal(file, fd, parsed.state, parsed.firstAt, madeKey, options);
    await journal.compactWhen(COMPACT_MIN_DROPPED);
    return journal;
  }

  /**
   * Rewrites the file without the entries no longer needed (see the top of
   * this file), whatever their number; undefined when keepMs is unset or
   * nothing would go. A failure before the new file is in place leaves the
   * journal as it was; after it (the directory's fsync), the journal
   * refuses further appends as after any failed write.
   */
  compact(nowMs = Date.now()): Promise<CompactionOutcome | undefined> {
    return this.compactWhen(1, nowMs);
  }

  private compactWhen(minDropped: number, nowMs = Date.now()): Promise<CompactionOutcome | undefined> {
    if (this.closed) return Promise.reject(new JournalClosedError(`journal ${this.file} is closed`));
    const run = this.queue.then(() => this.compactNow(minDropped, nowMs));
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** The entries a compaction at nowMs drops; empty when keepMs is unset. */
  private droppable(nowMs: number): Set<string> {
    const drop = new Set<string>();
    const keepMs = this.options.keepMs;
    if (keepMs === undefined) return drop;
    // What currentReleases() reads: the last success that names no release
    // (it forgets every app before it), and after it each app's last success.
    let lastUnnamed: string | undefined;
    const lastOfApp = new Map<string, string>();
    for (const e of this.state.values()) {
      if (e.status !== "finished" || e.result?.outcome !== "SUCCEEDED") continue;
      if (e.release) {
        lastOfApp.set(e.release.app, e.deploymentId);
      } else {
        lastUnnamed = e.deploymentId;
        lastOfApp.clear();
      }
    }
    const needed = new Set(lastOfApp.values());
    if (lastUnnamed !== undefined) needed.add(lastUnnamed);
    for (const e of this.state.values()) {
      if (e.status === "started" || !e.reported || needed.has(e.deploymentId)) continue;
      // An unreadable time (NaN) is never old enough.
      if (nowMs - (this.firstAt.get(e.deploymentId) ?? Number.NaN) > keepMs) drop.add(e.deploymentId);
    }
    return drop;
  }

  private async compactNow(minDropped: number, nowMs: number): Promise<CompactionOutcome | undefined> {
    if (this.writeFailure !== undefined || this.closed) return undefined;
    const drop = this.droppable(nowMs);
    // minDropped is at least 1: nothing to drop, nothing written.
    if (drop.size < minDropped) return undefined;
    const lines: string[] = [];
    for (const e of this.state.values()) {
      if (drop.has(e.deploymentId)) continue;
      for (const r of recordsOf(e, this.firstAt.get(e.deploymentId))) lines.push(JSON.stringify(r));
    }
    const data = Buffer.from(lines.length > 0 ? `${lines.join("\n")}\n` : "", "utf8");
    const tmp = compactionFile(this.file);
    let fd: FileHandle | undefined;
    try {
      const mode = (await fs.stat(this.file)).mode & 0o777;
      // The journal's own flags: it becomes the journal's handle once renamed.
      fd = await fs.open(tmp, APPEND_FLAGS | fsConstants.O_TRUNC, mode);
      await writeAll(fd, data);
      if (!SYNC_PER_WRITE) await fd.datasync();
      await fs.rename(tmp, this.file);
    } catch (err) {
      await fd?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      const failed = { error: err, refusesAppends: false };
      this.options.onCompacted?.(failed);
      return failed;
    }
    const old = this.fd;
    this.fd = fd;
    for (const id of drop) {
      this.state.delete(id);
      this.firstAt.delete(id);
    }
    await old.close().catch(() => undefined);
    try {
      await syncDir(path.dirname(this.file));
    } catch (err) {
      // Until the rename is durable, a crash may bring the old file back
      // without what is appended to the new one: append nothing more.
      this.writeFailure = err;
      const failed = { error: err, refusesAppends: true };
      this.options.onCompacted?.(failed);
      return failed;
    }
    const done = { dropped: drop.size, kept: this.state.size, bytes: data.length };
    this.options.onCompacted?.(done);
    return done;
  }

  /**
   * The journal part of the nonce of this agent's start of `deploymentId`
   * (js/raceForTarget.ts RaceNonce), the same in every run of the agent
   * with this journal and unguessable without its key: a start stored with
   * it that the journal does not record is this journal's, stored just
   * before a crash (handleCommand.ts).
   */
  startNonce(agentId: string, deploymentId: string): string {
    return createHmac("sha256", this.key).update(`${agentId}\n${deploymentId}`).digest("base64url").slice(0, 32);
  }

  get(deploymentId: string): JournalEntry | undefined {
    const entry = this.state.get(deploymentId);
    return entry ? copy(entry) : undefined;
  }

  /** All entries in the order they were first recorded. */
  entries(): JournalEntry[] {
    return [...this.state.values()].map(copy);
  }

  /**
   * The release each app runs after the applies this journal records: the
   * release of the last apply of the app that succeeded. An app no recorded
   * apply installed is absent (its release is what the registry entry says),
   * and so is every app when a success of an older agent, which does not
   * name its release, comes later.
   */
  currentReleases(): Map<string, AgentRelease> {
    const out = new Map<string, AgentRelease>();
    // In the order the applies started; one app's applies run one at a time.
    for (const e of this.state.values()) {
      if (e.status !== "finished" || e.result?.outcome !== "SUCCEEDED") continue;
      if (!e.release) {
        // An older agent's success (a downgrade and back): of an app it
        // does not name, so no earlier release is known to be current.
        out.clear();
        continue;
      }
      const { app, ...release } = e.release;
      out.set(app, release);
    }
    return out;
  }

  /** Must resolve before the deployment is applied; throws JournalStateError if the deployment is known. `release`: what the apply installs if it succeeds. */
  async markStarted(deploymentId: string, release?: JournalRelease): Promise<void> {
    await this.append(() => ({ v: VERSION, op: "started", deploymentId, at: now(), ...(release ? { release: copyRelease(release) } : {}) }));
  }

  async markFinished(deploymentId: string, result: JournalResult): Promise<void> {
    await this.append(() => ({ v: VERSION, op: "finished", deploymentId, at: now(), result: { ...result } }));
  }

  async markDeclined(deploymentId: string, reason: string, afterStart = false): Promise<void> {
    await this.append(() => ({ v: VERSION, op: "declined", deploymentId, at: now(), reason, ...(afterStart ? { afterStart: true as const } : {}) }));
  }

  /** Idempotent: marking an already reported entry writes nothing. */
  async markReported(deploymentId: string): Promise<void> {
    await this.append(() =>
      this.state.get(deploymentId)?.reported ? undefined : { v: VERSION, op: "reported", deploymentId, at: now() },
    );
  }

  /** Waits for pending appends, then closes the file. Appends after close() reject. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.queue;
      await this.fd.close();
    })();
    return this.closed;
  }

  private append(build: () => JournalRecord | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new JournalClosedError(`journal ${this.file} is closed`));
    const run = this.queue.then(async () => {
      if (this.writeFailure !== undefined) {
        throw new JournalWriteError(`journal ${this.file} failed earlier and accepts no more writes`, { cause: this.writeFailure });
      }
      const record = build();
      if (!record) return;
      // Check before writing: a record on disk must always replay cleanly.
      const next = transition(this.state.get(record.deploymentId), record);
      if (typeof next === "string") throw new JournalStateError(next);
      try {
        await writeAll(this.fd, Buffer.from(`${JSON.stringify(record)}\n`, "utf8"));
        if (!SYNC_PER_WRITE) await this.fd.datasync();
      } catch (err) {
        this.writeFailure = err;
        throw new JournalWriteError(`appending to journal ${this.file} failed`, { cause: err });
      }
      if (!this.firstAt.has(record.deploymentId)) this.firstAt.set(record.deploymentId, Date.parse(record.at));
      this.state.set(record.deploymentId, next);
    });
    // The chain must survive a rejected append; the caller sees the rejection via run.
    this.queue = run.catch(() => undefined);
    // A look for what to drop every so many appends, after this one: an
    // agent runs for months between the starts that also look.
    if (++this.sinceCompactCheck >= COMPACT_CHECK_EVERY && this.options.keepMs !== undefined) {
      this.sinceCompactCheck = 0;
      void this.compactWhen(COMPACT_MIN_DROPPED).catch(() => undefined);
    }
    return run;
  }
}

/** The entry after applying record, or a reason why the transition is invalid. */
function transition(entry: JournalEntry | undefined, record: JournalRecord): JournalEntry | string {
  const id = record.deploymentId;
  switch (record.op) {
    case "started":
      if (entry) return `deployment ${id} is already in the journal (${entry.status})`;
      return { deploymentId: id, status: "started", startedAt: record.at, reported: false, ...(record.release ? { release: record.release } : {}) };
    case "declined":
      // Declining is only honest if nothing ran: no entry, or a started entry
      // whose claim the agent then lost (it records "started" before it
      // publishes its claim, and runs nothing until the claim is confirmed).
      // After a start that won, only from that started entry.
      if (entry && entry.status !== "started") return `deployment ${id} cannot be declined, it is already ${entry.status}`;
      if (record.afterStart && !entry) return `deployment ${id} cannot be declined after its start, it was not started`;
      return { deploymentId: id, status: "declined", declineReason: record.reason, ...(record.afterStart ? { declinedAfterStart: true } : {}), reported: false };
    case "finished":
      if (entry?.status !== "started") return `deployment ${id} cannot finish, it is ${entry ? entry.status : "not started"}`;
      return { ...entry, status: "finished", result: { ...record.result } };
    case "reported":
      if (!entry || entry.status === "started") return `deployment ${id} has no result or decline to report yet`;
      return { ...entry, reported: true };
  }
}

interface Parsed {
  state: Map<string, JournalEntry>;
  firstAt: Map<string, number>;
  /** Length of the valid prefix; a torn tail after it is cut off. */
  goodBytes: number;
  /** Line number of an ignored torn last line. */
  tornLine: number | undefined;
  /** The last record is whole but lacks its newline. */
  missingNewline: boolean;
}

function parse(file: string, content: Buffer): Parsed {
  const state = new Map<string, JournalEntry>();
  const firstAt = new Map<string, number>();
  // Only a line without its trailing newline can be the victim of a crash
  // mid-write: each record is written with its newline in one append.
  const lastNewline = content.lastIndexOf(0x0a);
  const complete = content.subarray(0, lastNewline + 1).toString("utf8");
  const lines = complete.split("\n");
  lines.pop(); // the empty string after the final newline
  const goodBytes = lastNewline + 1;
  let tornLine: number | undefined;
  let missingNewline = false;

  const tail = content.subarray(lastNewline + 1);
  if (tail.length > 0) {
    const tailText = tail.toString("utf8");
    if (decodeRecord(tailText) === undefined) {
      tornLine = lines.length + 1;
    } else {
      // Complete record missing only its newline: the data is whole, keep it.
      lines.push(tailText);
      missingNewline = true;
    }
  }

  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === "") return;
    const record = decodeRecord(line);
    if (!record) throw new JournalCorruptError(file, lineNumber, "not a valid journal record");
    const next = transition(state.get(record.deploymentId), record);
    if (typeof next === "string") throw new JournalCorruptError(file, lineNumber, next);
    if (!firstAt.has(record.deploymentId)) firstAt.set(record.deploymentId, Date.parse(record.at));
    state.set(record.deploymentId, next);
  });
  return { state, firstAt, goodBytes, tornLine, missingNewline };
}

/**
 * Records that replay to `e` (compaction): its start, its end and its
 * report. Times the entry does not keep (a decline's, a report's) are its
 * first record's.
 */
function recordsOf(e: JournalEntry, firstAt: number | undefined): JournalRecord[] {
  const id = e.deploymentId;
  const at = new Date(firstAt !== undefined && Number.isFinite(firstAt) ? firstAt : 0).toISOString();
  const out: JournalRecord[] = [];
  if (e.status !== "declined" || e.declinedAfterStart) out.push({ v: VERSION, op: "started", deploymentId: id, at: e.startedAt ?? at, ...(e.release ? { release: copyRelease(e.release) } : {}) });
  if (e.status === "finished" && e.result) out.push({ v: VERSION, op: "finished", deploymentId: id, at: e.result.finishedAt, result: { ...e.result } });
  if (e.status === "declined") out.push({ v: VERSION, op: "declined", deploymentId: id, at, reason: e.declineReason ?? "", ...(e.declinedAfterStart ? { afterStart: true as const } : {}) });
  if (e.reported) out.push({ v: VERSION, op: "reported", deploymentId: id, at });
  return out;
}

const compactionFile = (file: string): string => `${file}.compact`;

function decodeRecord(line: string): JournalRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(value) || value.v !== VERSION) return undefined;
  const { op, deploymentId, at } = value;
  if (typeof deploymentId !== "string" || deploymentId === "" || typeof at !== "string") return undefined;
  switch (op) {
    case "started": {
      // An unreadable release is left out, not taken for damage: it only says what an app runs, which the registry entry says too.
      const release = decodeRelease(value.release);
      return { v: VERSION, op, deploymentId, at, ...(release ? { release } : {}) };
    }
    case "reported":
      return { v: VERSION, op, deploymentId, at };
    case "declined":
      return typeof value.reason === "string" ? { v: VERSION, op, deploymentId, at, reason: value.reason, ...(value.afterStart === true ? { afterStart: true as const } : {}) } : undefined;
    case "finished": {
      const result = decodeResult(value.result);
      return result ? { v: VERSION, op, deploymentId, at, result } : undefined;
    }
    default:
      return undefined;
  }
}

function decodeRelease(value: unknown): JournalRelease | undefined {
  if (!isObject(value)) return undefined;
  const { app, release, deploymentId, version, artifact } = value;
  if (typeof app !== "string" || typeof release !== "string" || typeof deploymentId !== "string" || typeof version !== "string") return undefined;
  if (artifact === undefined) return { app, release, deploymentId, version };
  if (!isObject(artifact) || typeof artifact.name !== "string" || typeof artifact.digest !== "string") return undefined;
  return { app, release, deploymentId, version, artifact: { name: artifact.name, digest: artifact.digest } };
}

function copyRelease(r: JournalRelease): JournalRelease {
  return { ...r, ...(r.artifact ? { artifact: { ...r.artifact } } : {}) };
}

function decodeResult(value: unknown): JournalResult | undefined {
  if (!isObject(value)) return undefined;
  const { outcome, message, exitCode, durationMs, finishedAt } = value;
  if (outcome !== "SUCCEEDED" && outcome !== "FAILED") return undefined;
  if (typeof message !== "string" || typeof durationMs !== "number" || typeof finishedAt !== "string") return undefined;
  if (exitCode !== null && typeof exitCode !== "number") return undefined;
  return { outcome, message, exitCode, durationMs, finishedAt };
}

async function writeAll(fd: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  // write(2) may write less than asked (e.g. on a nearly full disk).
  while (offset < data.length) {
    const { bytesWritten } = await fd.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** The journal's key, or undefined when its file is missing or not a key (a new one is made). */
async function readKey(stateDir: string): Promise<Buffer | undefined> {
  try {
    const key = Buffer.from((await fs.readFile(path.join(stateDir, KEY_FILE_NAME), "utf8")).trim(), "base64url");
    return key.length === KEY_BYTES ? key : undefined;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
}

/** Makes a new key, written whole (a temporary file, fdatasync'd, renamed); the caller syncs the directory. */
async function writeKey(stateDir: string): Promise<Buffer> {
  const key = randomBytes(KEY_BYTES);
  const file = path.join(stateDir, KEY_FILE_NAME);
  const tmp = `${file}.tmp`;
  const fd = await fs.open(tmp, "w", 0o600);
  try {
    await writeAll(fd, Buffer.from(`${key.toString("base64url")}\n`, "utf8"));
    await fd.datasync();
  } finally {
    await fd.close();
  }
  await fs.rename(tmp, file);
  return key;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function copy(entry: JournalEntry): JournalEntry {
  return { ...entry, ...(entry.result ? { result: { ...entry.result } } : {}), ...(entry.release ? { release: copyRelease(entry.release) } : {}) };
}

function now(): string {
  return new Date().toISOString();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === code;
}
