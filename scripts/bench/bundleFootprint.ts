// An agent's RSS while it installs a 100 MB bundle (issue 3's benchmark):
// the agent runs as its own process; the bundle is a gzip'd tar of random
// bytes (incompressible, so the artifact really is ~100 MB), uploaded through
// UploadArtifact from a file and installed by a real deployment. RSS is
// sampled every 50 ms from /proc while the deployment runs.
import { createReadStream, createWriteStream } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import tar from "tar-stream";
import type { BenchClient } from "./client.js";
import { AGENT_MAIN, startCoordinatorProc } from "./stack.js";
import { NodeProc, memOf, round1, sleep } from "./procs.js";

export interface BundleFootprintResult {
  artifactMb: number;
  idleRssMb: number;
  peakRssDuringApplyMb: number;
  applyMs: number;
  state: string;
}

/** A gzip'd tar of `bytes` random bytes and a deploy.yaml with no hooks (bundles.md). */
export async function writeBundle(file: string, bytes: number): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createGzip({ level: 1 }), createWriteStream(file));
  await new Promise<void>((res, rej) => pack.entry({ name: "deploy.yaml" }, "version: 1\nkeep_releases: 2\n", (e) => (e ? rej(e) : res())));
  const entry = pack.entry({ name: "data.bin", size: bytes }, () => undefined);
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    if (!entry.write(randomBytes(n))) await new Promise<void>((r) => entry.once("drain", () => r()));
    left -= n;
  }
  entry.end(() => undefined);
  pack.finalize();
  await done;
}

export async function runBundleFootprint(o: { natsUrl: string; stateRoot: string; megabytes: number }): Promise<BundleFootprintResult> {
  const file = join(o.stateRoot, "big-bundle.tar.gz");
  await writeBundle(file, o.megabytes * 1024 * 1024);
  const coordinator = await startCoordinatorProc(o.natsUrl);
  const agent = new NodeProc("bundle-agent", AGENT_MAIN, {
    env: {
      NATS_URL: o.natsUrl,
      DEPLOY_DEV_MODE: "1",
      DEPLOY_AGENT_ID: "bundle-footprint",
      DEPLOY_ENVIRONMENT: "footprint",
      DEPLOY_AGENT_APPS: JSON.stringify({ big: {} }),
      DEPLOY_AGENT_STATE_DIR: join(o.stateRoot, "bundle-footprint"),
      DEPLOY_AGENT_ROOT: join(o.stateRoot, "bundle-footprint-root"),
      LOG_LEVEL: "warn",
    },
  });
  try {
    await agent.waitForLog("agent running", 30_000).catch(async () => {
      // LOG_LEVEL warn hides the line: wait until the registry shows it instead
      for (let i = 0; i < 100; i++) {
        const a = await coordinator.client.agents({ app: "big" });
        if (a.agents?.some((x) => x.live)) return;
        await sleep(100);
      }
      throw new Error("bundle agent did not register");
    });
    await sleep(2000);
    const idle = memOf(agent.pid)?.rssMb ?? 0;
    const artifact = await upload(coordinator.client, file);
    const started = Date.now();
    const d = await coordinator.client.create({
      requestId: `bundle-footprint-${started}`,
      app: "big",
      environment: "footprint",
      changeset: { version: "v1", artifact: { name: "big", digest: artifact.digest } },
    });
    let peak = idle;
    let state = "";
    for (;;) {
      peak = Math.max(peak, memOf(agent.pid)?.rssMb ?? 0);
      const g = await coordinator.client.get(d.id!);
      state = g.state ?? "";
      if (/SUCCEEDED|FAILED|CANCELLED/.test(state)) break;
      if (Date.now() - started > 300_000) throw new Error("bundle deployment did not finish in 300 s");
      await sleep(50);
    }
    return { artifactMb: round1(Number(artifact.size) / 1024 / 1024), idleRssMb: idle, peakRssDuringApplyMb: round1(peak), applyMs: Date.now() - started, state };
  } finally {
    await agent.stop(5000);
    await coordinator.stop();
  }
}

/** Streams the file to UploadArtifact as artifact `name` (its app's bucket) in 64 KiB chunks, honouring backpressure. */
export async function upload(client: BenchClient, file: string, name = "big"): Promise<{ digest: string; size: string }> {
  let call!: grpc.ClientWritableStream<object>;
  const answer = new Promise<{ digest: string; size: string }>((resolve, reject) => {
    const fn = client.raw.UploadArtifact as (opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { digest: string; size: string }) => void) => grpc.ClientWritableStream<object>;
    call = fn.call(client.raw, { deadline: Date.now() + 300_000 }, (e, r) => (e ? reject(e) : resolve(r)));
  });
  call.write({ header: { name } });
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>) {
    if (!call.write({ chunk })) await new Promise((r) => call.once("drain", r));
  }
  call.end();
  return answer;
}
