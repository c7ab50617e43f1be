// The API's yardstick: a bare grpc-js unary call that makes one JetStream
// publish, and nothing else. Its server runs as its own child process (as the
// coordinator does) on the bench's nats-server; api.ts calls it with the same
// clients and pacing as CreateDeployment, in the same run.
import * as grpc from "@grpc/grpc-js";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
// The same client as the product's: nats.js without its thrown-away Error per request.
import "../../services/shared/src/js/requestCancel.js";
import { connect } from "@nats-io/transport-node";

const identity = (b: Buffer): Buffer => b;

/** One unary method with raw bytes in and out. */
export const BARE_SERVICE: grpc.ServiceDefinition = {
  publish: {
    path: "/bench.Bare/Publish",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export const BARE_STREAM = "BENCH_BARE_UNARY";

type RawBare = grpc.Client & { publish: (req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Buffer) => void) => void };

/** A client of the bare server: `call(payload)` resolves when the publish was acknowledged. */
export class BareClient {
  readonly #raw: RawBare;
  constructor(address: string) {
    const Ctor = grpc.makeGenericClientConstructor(BARE_SERVICE, "Bare");
    this.#raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as RawBare;
  }
  call(payload: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.#raw.publish(payload, { deadline: Date.now() + 60_000 }, (e) => (e ? reject(e) : resolve())));
  }
  close(): void {
    this.#raw.close();
  }
}

async function main(): Promise<void> {
  // As the product connects (services/shared/src/js/context.ts): no stack captured per request.
  const nc = await connect({ servers: process.env.NATS_URL ?? "", name: "bench-bare-unary", noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: BARE_STREAM, subjects: ["bench.bare.>"], retention: RetentionPolicy.Limits, storage: StorageType.File, max_msgs: 100_000 });
  const js = jetstream(nc);
  let i = 0;
  const server = new grpc.Server();
  server.addService(BARE_SERVICE, {
    publish: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      js.publish(`bench.bare.${i++ % 1000}`, call.request).then(
        (ack) => cb(null, Buffer.from(String(ack.seq))),
        (err: unknown) => cb({ code: grpc.status.UNAVAILABLE, details: String(err) }),
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.send?.({ ready: `127.0.0.1:${port}` });
  const exit = (): void => {
    server.forceShutdown();
    void nc.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", exit);
  process.on("disconnect", exit);
}

// Run as a child process (api.ts), not when imported for BareClient.
if (process.env.BENCH_BARE_UNARY === "1") {
  main().catch((err: unknown) => {
    process.send?.({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  });
}
