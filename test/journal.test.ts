import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  COMPACT_MIN_DROPPED,
  Journal,
  JournalClosedError,
  JournalCorruptError,
  JournalStateError,
  type JournalResult,
} from "../services/agent/src/journal.js";

let stateDir: string;
const journalFile = (): string => path.join(stateDir, "journal.jsonl");
const open = (warnings: string[] = []): Promise<Journal> => Journal.open(stateDir, { onWarning: (m) => warnings.push(m) });

const result: JournalResult = {
  outcome: "SUCCEEDED",
  message: "exit code 0",
  exitCode: 0,
  durationMs: 1234,
  finishedAt: "2025-01-01T00:00:01.000Z",
};

beforeEach(async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "agent-journal-"));
  // A nested dir checks that open() creates it.
  stateDir = path.join(tmp, "state", "agent");
});
afterEach(async () => {
  await fs.rm(path.dirname(path.dirname(stateDir)), { recursive: true, force: true });
});

/**
 * The open-file flags of this process's handle on `file` (from
 * /proc/self/fdinfo: Linux, where the agent runs), or undefined when none.
 */
async function openFlags(file: string): Promise<number | undefined> {
  for (const fd of await fs.readdir("/proc/self/fd")) {
    const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== file) continue;
    const info = await fs.readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
    const m = /^flags:\s*([0-7]+)$/m.exec(info);
    if (m) return parseInt(m[1]!, 8);
  }
  return undefined;
}

describe("Journal", () => {
  it("survives a reopen with every state change", async () => {
    const journal = await open();
    await journal.markStarted("d-1");
    await journal.markFinished("d-1", result);
    await journal.markReported("d-1");
    await journal.markStarted("d-2");
    await journal.markDeclined("d-3", "deployment cancelled");
    await journal.close();

    const reopened = await open();
    expect(reopened.get("d-1")).toEqual({
      deploymentId: "d-1",
      status: "finished",
      startedAt: expect.any(String) as string,
      result,
      reported: true,
    });
    expect(reopened.get("d-2")).toMatchObject({ status: "started", reported: false });
    expect(reopened.get("d-2")?.result).toBeUndefined();
    expect(reopened.get("d-3")).toEqual({ deploymentId: "d-3", status: "declined", declineReason: "deployment cancelled", reported: false });
    expect(reopened.get("d-4")).toBeUndefined();
    expect(reopened.entries().map((e) => e.deploymentId)).toEqual(["d-1", "d-2", "d-3"]);
    await reopened.close();

    const lines = (await fs.readFile(journalFile(), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    expect(JSON.parse(lines[0] ?? "")).toEqual({ v: 1, op: "started", deploymentId: "d-1", at: expect.any(String) as string });
  });

  it("returns copies that do not alter the journal", async () => {
    const journal = await open();
    await journal.markStarted("d-1");
    const entry = journal.get("d-1");
    if (entry) entry.status = "finished";
    expect(journal.get("d-1")?.status).toBe("started");
    await journal.close();
  });

  it("ignores a torn last line with a warning and keeps appending cleanly", async () => {
    const journal = await open();
    await journal.markStarted("d-1");
    await journal.close();
    // A crash in the middle of writing the "finished" record.
    await fs.appendFile(journalFile(), '{"v":1,"op":"finished","deploymentId":"d-1","at":"2025-');

    const warnings: string[] = [];
    const reopened = await open(warnings);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/:2: ignoring torn last line/);
    expect(reopened.get("d-1")?.status).toBe("started");
    // The fragment must be gone, or this record would be glued onto it.
    await reopened.markFinished("d-1", result);
    await reopened.close();

    const again = await open(warnings);
    expect(warnings).toHaveLength(1);
    expect(again.get("d-1")?.status).toBe("finished");
    await again.close();
  });

  it("keeps a complete last record whose newline is missing", async () => {
    await fs.mkdir(stateDir, { recursive: true });
    await fs.writeFile(journalFile(), '{"v":1,"op":"started","deploymentId":"d-1","at":"2025-01-01T00:00:00.000Z"}');
    const warnings: string[] = [];
    const journal = await open(warnings);
    expect(warnings).toEqual([]);
    expect(journal.get("d-1")?.status).toBe("started");
    await journal.markDeclined("d-2", "gone");
    await journal.close();
    const reopened = await open(warnings);
    expect(reopened.entries()).toHaveLength(2);
    await reopened.close();
  });

  it("throws JournalCorruptError naming the line for damage before the end", async () => {
    await fs.mkdir(stateDir, { recursive: true });
    await fs.writeFile(
      journalFile(),
      [
        '{"v":1,"op":"started","deploymentId":"d-1","at":"2025-01-01T00:00:00.000Z"}',
        "garbage",
        '{"v":1,"op":"started","deploymentId":"d-2","at":"2025-01-01T00:00:00.000Z"}',
        "",
      ].join("\n"),
    );
    const error = await open().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(JournalCorruptError);
    expect(error).toMatchObject({ code: "JOURNAL_CORRUPT", lineNumber: 2 });
  });

  it("throws JournalCorruptError for a complete but unparseable last line", async () => {
    await fs.mkdir(stateDir, { recursive: true });
    await fs.writeFile(journalFile(), '{"v":1,"op":"started"\n');
    await expect(open()).rejects.toMatchObject({ code: "JOURNAL_CORRUPT", lineNumber: 1 });
  });

  it("rejects a second markStarted for the same deployment", async () => {
    const journal = await open();
    await journal.markStarted("d-1");
    await expect(journal.markStarted("d-1")).rejects.toBeInstanceOf(JournalStateError);
    // A rejected transition writes nothing and leaves the journal usable.
    await journal.markFinished("d-1", result);
    await expect(journal.markDeclined("d-1", "late")).rejects.toMatchObject({ code: "JOURNAL_STATE" });
    await journal.close();
    const lines = (await fs.readFile(journalFile(), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(2);
  });

  it("declines a started entry whose claim was lost (nothing ran)", async () => {
    const journal = await open();
    await journal.markStarted("d-2");
    await journal.markDeclined("d-2", "claim refused");
    expect(journal.get("d-2")).toMatchObject({ status: "declined", declineReason: "claim refused" });
    await journal.close();
  });

  it("declines a started entry after its start won, and keeps that across a reopen", async () => {
    const journal = await open();
    await expect(journal.markDeclined("d-1", "cancelled", true)).rejects.toBeInstanceOf(JournalStateError);
    await journal.markStarted("d-1");
    await journal.markDeclined("d-1", "the deployment is being cancelled: not started", true);
    await journal.close();
    const reopened = await open();
    expect(reopened.get("d-1")).toEqual({ deploymentId: "d-1", status: "declined", declineReason: "the deployment is being cancelled: not started", declinedAfterStart: true, reported: false });
    await reopened.close();
  });

  it("rejects transitions out of order", async () => {
    const journal = await open();
    await expect(journal.markFinished("d-1", result)).rejects.toBeInstanceOf(JournalStateError);
    await journal.markStarted("d-1");
    await expect(journal.markReported("d-1")).rejects.toBeInstanceOf(JournalStateError);
    await journal.markFinished("d-1", result);
    await expect(journal.markFinished("d-1", result)).rejects.toBeInstanceOf(JournalStateError);
    await journal.markReported("d-1");
    await journal.markReported("d-1"); // idempotent
    await journal.close();
    const lines = (await fs.readFile(journalFile(), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(3);
  });

  it("serialises concurrent appends so every record lands intact", async () => {
    const journal = await open();
    const ids = Array.from({ length: 200 }, (_, i) => `d-${i}`);
    await Promise.all(ids.map((id) => journal.markStarted(id)));
    await Promise.all(ids.map((id) => journal.markFinished(id, { ...result, message: `done ${id} ${"z".repeat(5000)}` })));
    // Concurrent starts for one id: exactly one wins.
    const race = await Promise.allSettled([journal.markStarted("dup"), journal.markStarted("dup"), journal.markStarted("dup")]);
    expect(race.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    await journal.close();

    const reopened = await open();
    expect(reopened.entries()).toHaveLength(201);
    for (const id of ids) expect(reopened.get(id)?.result?.message).toMatch(new RegExp(`^done ${id} z+$`));
    await reopened.close();
  });

  it("rejects appends after close", async () => {
    const journal = await open();
    const pending = journal.markStarted("d-1");
    const closing = journal.close();
    await expect(journal.markStarted("d-2")).rejects.toBeInstanceOf(JournalClosedError);
    await pending;
    await closing;
    const reopened = await open();
    expect(reopened.get("d-1")?.status).toBe("started");
    await reopened.close();
  });

  // handleCommand.ts: a restarted agent recognises a start it stored before
  // its journal recorded it by the nonce derived from the journal's key.
  it("derives the same start nonce after a reopen, and another with a new journal", async () => {
    const first = await open();
    const nonce = first.startNonce("a1", "d-1");
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(first.startNonce("a1", "d-2")).not.toBe(nonce);
    expect(first.startNonce("a2", "d-1")).not.toBe(nonce);
    await first.close();
    expect((await fs.stat(path.join(stateDir, "journal.key"))).mode & 0o777).toBe(0o600);

    const reopened = await open();
    expect(reopened.startNonce("a1", "d-1")).toBe(nonce);
    await reopened.close();

    // A lost journal loses its key: a key file left behind is not reused.
    await fs.rm(journalFile());
    const fresh = await open();
    expect(fresh.startNonce("a1", "d-1")).not.toBe(nonce);
    await fresh.close();

    // A journal from before keys (or whose key is unreadable) gets one.
    await fs.writeFile(path.join(stateDir, "journal.key"), "not a key\n");
    const keyed = await open();
    const again = keyed.startNonce("a1", "d-1");
    await keyed.close();
    const reopenedAgain = await open();
    expect(reopenedAgain.startNonce("a1", "d-1")).toBe(again);
    await reopenedAgain.close();
  });

  it("says what each app runs: the release of its last apply that succeeded, across a reopen", async () => {
    const journal = await open();
    const release = (app: string, d: string, version: string) => ({ app, release: `${version}-${d}`, deploymentId: d, version });
    await journal.markStarted("d-1", release("web", "d-1", "v1"));
    await journal.markFinished("d-1", result);
    await journal.markStarted("d-2", { ...release("api", "d-2", "v1"), artifact: { name: "api", digest: "sha256:ab" } });
    await journal.markFinished("d-2", result);
    // Failed, or never finished: what the app ran before stays.
    await journal.markStarted("d-3", release("web", "d-3", "v2"));
    await journal.markFinished("d-3", { ...result, outcome: "FAILED" });
    await journal.markStarted("d-4", release("api", "d-4", "v2"));
    expect(Object.fromEntries(journal.currentReleases())).toEqual({
      web: { release: "v1-d-1", deploymentId: "d-1", version: "v1" },
      api: { release: "v1-d-2", deploymentId: "d-2", version: "v1", artifact: { name: "api", digest: "sha256:ab" } },
    });
    await journal.close();

    const reopened = await open();
    expect(reopened.get("d-2")?.release).toEqual({ app: "api", release: "v1-d-2", deploymentId: "d-2", version: "v1", artifact: { name: "api", digest: "sha256:ab" } });
    await reopened.markFinished("d-4", result);
    expect(reopened.currentReleases().get("api")?.deploymentId).toBe("d-4");
    expect(reopened.currentReleases().get("web")?.deploymentId).toBe("d-1");
    await reopened.close();
  });

  it("knows no app's release after a success recorded without one (an older agent's), and ignores an unreadable release", async () => {
    const journal = await open();
    await journal.markStarted("d-1", { app: "web", release: "v1-d-1", deploymentId: "d-1", version: "v1" });
    await journal.markFinished("d-1", result);
    await journal.markStarted("d-2");
    await journal.markFinished("d-2", result);
    expect(journal.currentReleases().size).toBe(0);
    await journal.close();
    await fs.appendFile(journalFile(), `${JSON.stringify({ v: 1, op: "started", deploymentId: "d-3", at: "2025-01-01T00:00:00.000Z", release: { app: 7 } })}\n`);
    const reopened = await open();
    expect(reopened.get("d-3")).toMatchObject({ status: "started" });
    expect(reopened.get("d-3")?.release).toBeUndefined();
    await reopened.close();
  });
});

describe("Journal compaction", () => {
  const DAY = 24 * 3600 * 1000;
  const release = (app: string, d: string) => ({ app, release: `v-${d}`, deploymentId: d, version: `v-${d}` });
  const compacted: unknown[] = [];
  const openKeeping = (keepMs = DAY): Promise<Journal> => Journal.open(stateDir, { keepMs, onCompacted: (o) => compacted.push(o) });
  const lines = async (): Promise<{ op: string; deploymentId: string }[]> =>
    (await fs.readFile(journalFile(), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { op: string; deploymentId: string });
  beforeEach(() => void compacted.splice(0));

  it("writes each record durably (O_DSYNC), with the handle it opened and with the one a compaction made", async () => {
    const journal = await Journal.open(stateDir, { keepMs: DAY });
    await journal.markStarted("d-1");
    const flags = await openFlags(journalFile());
    expect(flags).toBeDefined();
    expect(flags! & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
    expect(flags! & fsConstants.O_APPEND).toBe(fsConstants.O_APPEND);
    // Failed: a success would be kept (what the agent runs).
    await journal.markFinished("d-1", { ...result, outcome: "FAILED" });
    await journal.markReported("d-1");
    expect(await journal.compact(Date.now() + 2 * DAY)).toEqual({ dropped: 1, kept: 0, bytes: 0 });
    const after = await openFlags(journalFile());
    expect(after! & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
    expect(after! & fsConstants.O_APPEND).toBe(fsConstants.O_APPEND);
    await journal.markStarted("d-2");
    await journal.close();
    expect((await open()).get("d-2")?.status).toBe("started");
  });

  it("drops what is old and reported, keeps what recovery, re-reports and currentReleases need, and replays to the same entries", async () => {
    const journal = await openKeeping();
    // Old, finished and reported: dropped, but for each app's last success.
    for (const [d, app] of [["d-1", "web"], ["d-2", "api"], ["d-3", "web"]] as const) {
      await journal.markStarted(d, release(app, d));
      await journal.markFinished(d, result);
      await journal.markReported(d);
    }
    await journal.markStarted("d-4", release("web", "d-4"));
    await journal.markFinished("d-4", { ...result, outcome: "FAILED" });
    await journal.markReported("d-4");
    await journal.markDeclined("d-5", "cancelled");
    await journal.markReported("d-5");
    await journal.markStarted("d-6");
    await journal.markDeclined("d-6", "the deployment is being cancelled: not started", true);
    await journal.markReported("d-6");
    // Old but not reported, and old and never finished: kept.
    await journal.markStarted("d-7", release("api", "d-7"));
    await journal.markFinished("d-7", { ...result, outcome: "FAILED" });
    await journal.markStarted("d-8", release("web", "d-8"));
    const releasesBefore = journal.currentReleases();
    const bytesBefore = (await fs.stat(journalFile())).size;

    // Two days on, with a day's keep: nothing above is recent.
    const later = Date.now() + 2 * DAY;
    const outcome = await journal.compact(later);
    const kept = ["d-2", "d-3", "d-7", "d-8"];
    expect(outcome).toEqual({ dropped: 4, kept: 4, bytes: expect.any(Number) as number });
    expect(journal.entries().map((e) => e.deploymentId)).toEqual(kept);
    expect(journal.currentReleases()).toEqual(releasesBefore);
    const keptEntries = journal.entries();
    // Appends after it go to the new file.
    await journal.markFinished("d-8", result);
    await journal.markReported("d-7");
    await journal.close();
    expect((await fs.stat(journalFile())).size).toBeLessThan(bytesBefore);
    expect(await fs.readdir(stateDir)).toEqual(expect.not.arrayContaining(["journal.jsonl.compact"]));

    const reopened = await open();
    expect(reopened.entries().slice(0, 2)).toEqual(keptEntries.slice(0, 2));
    expect(reopened.get("d-7")).toEqual({ ...keptEntries[2], reported: true });
    expect(reopened.get("d-8")).toEqual({ ...keptEntries[3], status: "finished", result });
    expect(reopened.currentReleases().get("web")?.deploymentId).toBe("d-8");
    expect(reopened.currentReleases().get("api")?.deploymentId).toBe("d-2");
    await reopened.close();
  });

  it("replays a compacted decline after a start, and a decline alone, as they were", async () => {
    const journal = await openKeeping();
    await journal.markStarted("d-1");
    await journal.markDeclined("d-1", "after its start", true);
    await journal.markDeclined("d-2", "not started");
    await journal.markStarted("d-3");
    await journal.markDeclined("d-3", "lost the race");
    for (const d of ["d-1", "d-2", "d-3"]) await journal.markReported(d);
    const before = journal.entries();
    await journal.markStarted("d-4");
    await journal.markFinished("d-4", { ...result, outcome: "FAILED" });
    await journal.markReported("d-4");
    // Only d-4 is old enough: its start is backdated.
    const records = (await fs.readFile(journalFile(), "utf8")).split("\n").filter(Boolean);
    await journal.close();
    await fs.writeFile(journalFile(), records.map((l) => (l.includes('"d-4"') ? l.replace(/"at":"[^"]+"/, '"at":"2020-01-01T00:00:00.000Z"') : l)).join("\n") + "\n");
    const again = await openKeeping();
    expect(await again.compact()).toEqual({ dropped: 1, kept: 3, bytes: expect.any(Number) as number });
    await again.close();
    const reopened = await open();
    expect(reopened.entries()).toEqual(before);
    await reopened.close();
  });

  it("keeps the last success that names no release (an older agent's), which makes every earlier app's release unknown", async () => {
    const journal = await openKeeping();
    await journal.markStarted("d-1", release("web", "d-1"));
    await journal.markFinished("d-1", result);
    await journal.markStarted("d-2");
    await journal.markFinished("d-2", result);
    await journal.markStarted("d-3", release("api", "d-3"));
    await journal.markFinished("d-3", result);
    for (const d of ["d-1", "d-2", "d-3"]) await journal.markReported(d);
    const before = journal.currentReleases();
    expect([...before.keys()]).toEqual(["api"]);
    await journal.compact(Date.now() + 2 * DAY);
    expect(journal.entries().map((e) => e.deploymentId)).toEqual(["d-2", "d-3"]);
    expect(journal.currentReleases()).toEqual(before);
    await journal.close();
  });

  it("drops nothing without keepMs, nor what is recent", async () => {
    const journal = await open();
    await journal.markDeclined("d-1", "x");
    await journal.markReported("d-1");
    expect(await journal.compact(Date.now() + 1000 * DAY)).toBeUndefined();
    await journal.close();
    const keeping = await openKeeping();
    expect(await keeping.compact()).toBeUndefined();
    expect(keeping.entries()).toHaveLength(1);
    await keeping.close();
  });

  it("compacts at open once enough would go, and removes what a compaction cut short left", async () => {
    await fs.mkdir(stateDir, { recursive: true });
    const old = "2020-01-01T00:00:00.000Z";
    const n = COMPACT_MIN_DROPPED + 10;
    const records: string[] = [];
    for (let i = 0; i < n; i++) {
      const d = `d-${i}`;
      records.push(JSON.stringify({ v: 1, op: "started", deploymentId: d, at: old, release: release("web", d) }));
      records.push(JSON.stringify({ v: 1, op: "finished", deploymentId: d, at: old, result }));
      records.push(JSON.stringify({ v: 1, op: "reported", deploymentId: d, at: old }));
    }
    await fs.writeFile(journalFile(), `${records.join("\n")}\n`);
    await fs.writeFile(`${journalFile()}.compact`, "a torn rewrite");
    const key = await (async () => {
      const j = await open();
      const k = j.startNonce("a1", "d-x");
      await j.close();
      return k;
    })();
    const journal = await openKeeping();
    expect(compacted).toEqual([{ dropped: n - 1, kept: 1, bytes: expect.any(Number) as number }]);
    expect(journal.entries().map((e) => e.deploymentId)).toEqual([`d-${n - 1}`]);
    // The key stays: starts stored before the compaction are still this journal's.
    expect(journal.startNonce("a1", "d-x")).toBe(key);
    await journal.close();
    expect((await lines()).map((r) => r.op)).toEqual(["started", "finished", "reported"]);
    expect(await fs.readdir(stateDir)).toEqual(expect.not.arrayContaining(["journal.jsonl.compact"]));

    // Fewer than COMPACT_MIN_DROPPED to drop: left as it is at open.
    await fs.appendFile(journalFile(), [0, 1].flatMap((i) => [JSON.stringify({ v: 1, op: "declined", deploymentId: `x-${i}`, at: old, reason: "r" }), JSON.stringify({ v: 1, op: "reported", deploymentId: `x-${i}`, at: old })]).join("\n") + "\n");
    compacted.splice(0);
    const reopened = await openKeeping();
    expect(compacted).toEqual([]);
    expect(reopened.entries()).toHaveLength(3);
    await reopened.close();
  });

  it("compacts as it grows, without a restart, once enough is old", async () => {
    const journal = await openKeeping();
    const n = COMPACT_MIN_DROPPED + 20;
    for (let i = 0; i < n; i++) {
      await journal.markDeclined(`d-${i}`, "r");
      await journal.markReported(`d-${i}`);
    }
    expect(compacted).toEqual([]);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 2 * DAY);
      // The next look comes within 256 appends.
      for (let i = 0; i < 128 && compacted.length === 0; i++) {
        await journal.markDeclined(`x-${i}`, "r");
        await journal.markReported(`x-${i}`);
      }
      await journal.markDeclined("last", "r");
    } finally {
      vi.useRealTimers();
    }
    expect(compacted).toEqual([{ dropped: n, kept: expect.any(Number) as number, bytes: expect.any(Number) as number }]);
    expect(journal.entries().some((e) => e.deploymentId === "d-0")).toBe(false);
    expect(journal.get("last")).toMatchObject({ status: "declined" });
    await journal.close();
    const reopened = await open();
    expect(reopened.entries()).toHaveLength(journal.entries().length);
    await reopened.close();
  });
});
