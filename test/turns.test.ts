// turns() (services/shared/src/turns.ts): at most n holders, first come
// first served, a turn given back once however often its function is called.
// Where the agent takes its turn (StartAgentOptions.admit) is checked in
// redelivered-command.test.ts, beside the journal's answers.
import { describe, expect, it } from "vitest";
import { turns } from "../services/shared/src/index.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("turns", () => {
  it("lets n hold at once, the next in the order they asked", async () => {
    const take = turns(2);
    const order: number[] = [];
    const held = await Promise.all([take(), take()]);
    const later = [3, 4, 5].map((i) => take().then((done) => (order.push(i), done)));
    await tick();
    expect(order).toEqual([]);
    held[0]();
    held[0](); // a second call gives nothing back
    await tick();
    expect(order).toEqual([3]);
    held[1]();
    await tick();
    expect(order).toEqual([3, 4]);
    (await later[0]!)();
    await tick();
    expect(order).toEqual([3, 4, 5]);
  });
});
