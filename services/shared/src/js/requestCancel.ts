// nats.js 3.4's RequestOne.resolver() ends every request, answered or not,
// with cancel(), which builds `new RequestError("cancelled")` (an Error, so
// a stack trace is captured) only to reject a promise that is already
// settled. Every JetStream publish, KV write, direct get and API call pays
// it: 462 ms of a coordinator's 8.6 s of CPU in the API bench's profile,
// and 18.0 → 10.3 µs of client CPU per request in a loop of 20,000 requests
// against a local nats-server. Upstream main (3a7b736) still does it.
//
// The same method with one shared error: the same class and message for a
// cancel that was not settled before (none is, in the paths nats.js takes),
// and nothing allocated for the ones that were. Applied only when the
// method is the one read here (`patched` says whether it was): another
// version's is left alone, and test/nats-facts.test.ts fails so that
// someone looks again.
import { RequestError, RequestOne } from "@nats-io/nats-core/internal";

interface RequestOneShape {
  timer?: { cancel(): void };
  mux: { cancel(r: unknown): void };
  deferred: { reject(err: unknown): void };
}

const proto = RequestOne.prototype as unknown as { cancel(err?: Error): void };
const EXPECTED = /this\.mux\.cancel\(this\);\s*this\.deferred\.reject\(err \? err : new \w+\.RequestError\("cancelled"\)\);/;

function patch(): boolean {
  if (!EXPECTED.test(proto.cancel.toString())) return false;
  const cancelled = new RequestError("cancelled");
  proto.cancel = function (this: RequestOneShape, err?: Error): void {
    this.timer?.cancel();
    this.mux.cancel(this);
    this.deferred.reject(err ?? cancelled);
  };
  return true;
}

/** Whether nats.js's RequestOne.cancel was replaced (it is, on the pinned 3.4). */
export const patched: boolean = patch();
