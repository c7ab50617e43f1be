// Recording the desired release by compare-and-set, its first try going by
// the coordinator's watched copy of the key (releaseBook.ts) instead of a
// read: a copy that trails the bucket must never win over what the bucket
// holds, nor name the wrong predecessor. Real nats-server, the real bucket.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureInfrastructure } from "../services/coordinator/src/infrastructure.js";
import { recordDesiredRelease, releaseOfEntry } from "../services/coordinator/src/releases/recordDesiredRelease.js";
import {
  RELEASES_BUCKET,
  connectNats,
  foldEvent,
  makeEvent,
  releaseKey,
  type DeploymentRecord,
  type DesiredRelease,
  type EventBody,
} from "../services/shared/src/index.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

/** A one-target deployment of web/prod that SUCCEEDED, its events numbered from `firstSeq` (its finished event is the last). */
function succeeded(n: number, firstSeq: number): DeploymentRecord {
  const id = `d-0mwxzpgab-${String(n).padStart(8, "0")}`;
  let seq = firstSeq - 1;
  let rec: DeploymentRecord | undefined;
  const add = (source: string, body: EventBody): void => {
    seq++;
    rec = foldEvent(rec, { seq, time: new Date(1000 * seq).toISOString(), source, event: makeEvent(id, body) }).record;
  };
  const spec = {
    id,
    requestId: `r-${n}`,
    requestHash: "h",
    app: "web",
    environment: "prod",
    changeset: { version: `v${n}` },
    strategy: { maxConcurrency: 1, maxFailures: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 5000 },
    targets: ["a1"],
    requestedBy: "",
    selection: "all" as const,
  };
  add("coordinator", { type: "deployment.created", spec });
  add("coordinator", { type: "targets.dispatched", agentIds: ["a1"] });
  add("a1", { type: "target.started", agentId: "a1" });
  add("a1", { type: "target.result", agentId: "a1", outcome: "SUCCEEDED", message: "", exitCode: 0, durationMs: 1 });
  add("coordinator", { type: "deployment.finished", state: "SUCCEEDED", message: "1 of 1 target(s) succeeded" });
  expect(rec!.state).toBe("SUCCEEDED");
  return rec!;
}

describe("recording the desired release from a watched copy", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let kv: KV;
  const key = releaseKey("web", "prod");
  const stored = async (): Promise<{ release: DesiredRelease; revision: number }> => {
    const e = await kv.get(key);
    return { release: releaseOfEntry(e)!, revision: e!.revision };
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: "test" });
    await ensureInfrastructure(nc, await jetstreamManager(nc), { replicas: 1, commandsMaxAgeMs: 60_000 });
    kv = await new Kvm(jetstream(nc)).open(RELEASES_BUCKET);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.cleanup();
  });

  /** How many reads of the bucket's keys `fn` made (direct or stream gets, seen by a second connection). */
  const readsDuring = async <T>(fn: () => Promise<T>): Promise<{ value: T; reads: number }> => {
    const watcher = await connectNats({ url: server.url, name: "test-reads" });
    let reads = 0;
    for (const subject of [`$JS.API.DIRECT.GET.KV_${RELEASES_BUCKET}.>`, `$JS.API.DIRECT.GET.KV_${RELEASES_BUCKET}`, `$JS.API.STREAM.MSG.GET.KV_${RELEASES_BUCKET}`]) {
      watcher.subscribe(subject, { callback: () => void reads++ });
    }
    await watcher.flush();
    try {
      const value = await fn();
      await nc.flush();
      await watcher.flush();
      return { value, reads };
    } finally {
      await watcher.close();
    }
  };

  it("a current copy saves the read; a stale one is corrected by the bucket, and later releases are never replaced", async () => {
    const d1 = succeeded(1, 10);
    const d2 = succeeded(2, 20);
    const d3 = succeeded(3, 30);
    // A copy without the key (a pair's first release): a create, no read.
    expect(await readsDuring(() => recordDesiredRelease(kv, d1, { revision: 0 }))).toEqual({ value: "recorded", reads: 0 });
    const one = await stored();
    expect(one.release.deploymentId).toBe(d1.spec.id);

    // The copy is current: recorded on its revision, naming d1 before it, without a read.
    expect(await readsDuring(() => recordDesiredRelease(kv, d2, one))).toEqual({ value: "recorded", reads: 0 });
    const two = await stored();
    expect([two.release.deploymentId, two.release.previous?.deploymentId, two.revision]).toEqual([d2.spec.id, d1.spec.id, one.revision + 1]);

    // The copy trails (still d1): its compare-and-set fails, the bucket is
    // read (once), and d3 names d2, not d1, as the release it replaced.
    expect(await readsDuring(() => recordDesiredRelease(kv, d3, one))).toEqual({ value: "recorded", reads: 1 });
    const three = await stored();
    expect([three.release.deploymentId, three.release.previous?.deploymentId]).toEqual([d3.spec.id, d2.spec.id]);

    // A stale copy older than d2 does not let d2 replace d3, which finished later.
    expect(await recordDesiredRelease(kv, d2, one)).toBe("newer");
    // A copy that already shows it: nothing written.
    expect(await recordDesiredRelease(kv, d3, three)).toBe("already");
    expect((await stored()).revision).toBe(three.revision);

    // A copy that has not seen the key yet: the create fails on it, the
    // bucket is read, and d4 names d3.
    const d4 = succeeded(4, 40);
    expect((await readsDuring(() => recordDesiredRelease(kv, d4, { revision: 0 }))).value).toBe("recorded");
    const four = await stored();
    expect([four.release.deploymentId, four.release.previous?.deploymentId]).toEqual([d4.spec.id, d3.spec.id]);
  });
});
