import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
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
