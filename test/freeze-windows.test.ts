// Weekly freeze windows (services/shared/src/freeze.ts), read in a time zone:
// which instants a window holds, across the week's end, midnight and a
// daylight saving change, and the errors that name what is wrong.
import { describe, expect, it } from "vitest";
import { canonicalWindow, checkTimeZone, createLogger, freezeActive, freezeRecord, inWindows, minuteOfWeek, parseFreezeRecord, ANONYMOUS, ValidationError } from "../services/shared/src/index.js";
import { edgeTime, FreezeEdgeWatcher, parseFreezeEdge } from "../services/coordinator/src/freezeEdges.js";

const at = (iso: string): number => Date.parse(iso);

describe("weekly freeze windows", () => {
  it("reads the week from Monday 00:00 in the zone", () => {
    // Friday 2026-12-04 14:00 UTC is 15:00 in Berlin (CET, +1).
    expect(minuteOfWeek(at("2026-12-04T14:00:00Z"), "UTC")).toBe(4 * 1440 + 14 * 60);
    expect(minuteOfWeek(at("2026-12-04T14:00:00Z"), "Europe/Berlin")).toBe(4 * 1440 + 15 * 60);
    expect(minuteOfWeek(at("2026-12-07T00:00:00Z"), "UTC")).toBe(0);
  });

  it("a window holds its start and not its end, and wraps over the week's end", () => {
    const weekend = ["fri 15:00-mon 08:00"];
    expect(inWindows(weekend, "Europe/Berlin", at("2026-12-04T13:59:00Z"))).toBe(false); // Fri 14:59 Berlin
    expect(inWindows(weekend, "Europe/Berlin", at("2026-12-04T14:00:00Z"))).toBe(true); // Fri 15:00 Berlin
    expect(inWindows(weekend, "Europe/Berlin", at("2026-12-06T23:30:00Z"))).toBe(true); // Mon 00:30 Berlin
    expect(inWindows(weekend, "Europe/Berlin", at("2026-12-07T06:59:00Z"))).toBe(true); // Mon 07:59 Berlin
    expect(inWindows(weekend, "Europe/Berlin", at("2026-12-07T07:00:00Z"))).toBe(false); // Mon 08:00 Berlin
    expect(inWindows(weekend, "UTC", at("2026-12-04T14:30:00Z"))).toBe(false); // Fri 14:30 UTC
  });

  it("a window without days holds every day, over midnight", () => {
    const nights = ["18:00-08:00"];
    expect(inWindows(nights, "UTC", at("2026-12-02T17:59:00Z"))).toBe(false);
    expect(inWindows(nights, "UTC", at("2026-12-02T18:00:00Z"))).toBe(true);
    expect(inWindows(nights, "UTC", at("2026-12-03T07:59:00Z"))).toBe(true);
    expect(inWindows(nights, "UTC", at("2026-12-03T08:00:00Z"))).toBe(false);
    // Sunday night into Monday morning: across the week's end.
    expect(inWindows(nights, "UTC", at("2026-12-07T03:00:00Z"))).toBe(true);
    expect(inWindows(["09:00-17:00"], "UTC", at("2026-12-05T12:00:00Z"))).toBe(true);
    expect(inWindows(["09:00-17:00"], "UTC", at("2026-12-05T17:00:00Z"))).toBe(false);
  });

  it("follows the zone's clock across a daylight saving change", () => {
    // Berlin moves from 02:00 CET to 03:00 CEST on Sunday 2026-03-29.
    const w = ["sun 03:00-sun 04:00"];
    expect(inWindows(w, "Europe/Berlin", at("2026-03-29T00:30:00Z"))).toBe(false); // 01:30 CET
    expect(inWindows(w, "Europe/Berlin", at("2026-03-29T01:30:00Z"))).toBe(true); // 03:30 CEST
  });

  it("canonical text, and errors naming what is wrong", () => {
    expect(canonicalWindow(" Fri 15:00 - Mon 8:00 ")).toBe("fri 15:00-mon 08:00");
    expect(canonicalWindow("18:00-08:00")).toBe("18:00-08:00");
    const problem = (w: string): string => {
      try {
        canonicalWindow(w);
        return "accepted";
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        return (err as Error).message;
      }
    };
    expect(problem("friday 15:00-mon 08:00")).toMatch(/is not a window such as "fri 15:00-mon 08:00"/);
    expect(problem("fri 25:00-mon 08:00")).toMatch(/is not a window/);
    expect(problem("fri 15:00-08:00")).toMatch(/give a day on both sides/);
    expect(problem("fri 15:00-fri 15:00")).toMatch(/starts where it ends/);
    expect(problem("08:00-08:00")).toMatch(/starts where it ends/);
    expect(() => checkTimeZone("Mars/Olympus")).toThrow(/time_zone: "Mars\/Olympus" is not an IANA time zone/);
    expect(() => checkTimeZone("Europe/Berlin")).not.toThrow();
  });

  it("a stored freeze whose time zone is unknown is refused as a record (it would make every create throw), naming the field", () => {
    const rec = freezeRecord("prod", true, "x", ANONYMOUS, new Date("2026-12-01T00:00:00Z"), { name: "n", windows: ["18:00-08:00"], timeZone: "Europe/Berlin" });
    expect(parseFreezeRecord(new TextEncoder().encode(JSON.stringify(rec)), "prod.n")).toEqual(rec);
    const bad = new TextEncoder().encode(JSON.stringify({ ...rec, timeZone: "Mars/Olympus" }));
    expect(() => parseFreezeRecord(bad, "prod.n")).toThrow(/^freeze\.timeZone: "Mars\/Olympus" is not an IANA time zone/);
  });

  it("a freeze with windows is in force only within them; an ended one never", () => {
    const weekend = freezeRecord("prod", true, "no weekend deploys", ANONYMOUS, new Date("2026-12-01T00:00:00Z"), { name: "weekends", windows: ["sat 00:00-mon 00:00"] });
    expect(freezeActive(weekend, at("2026-12-05T12:00:00Z"))).toBe(true);
    expect(freezeActive(weekend, at("2026-12-04T12:00:00Z"))).toBe(false);
    const ended = freezeRecord("prod", true, "x", ANONYMOUS, new Date("2026-12-01T00:00:00Z"), { until: new Date("2026-12-02T00:00:00Z") });
    expect(freezeActive(ended, at("2026-12-01T12:00:00Z"))).toBe(true);
    expect(freezeActive(ended, at("2026-12-02T00:00:00Z"))).toBe(false);
  });
});

describe("a freeze's edges (freezeEdges.ts): what the notifier hears of though nothing is written", () => {
  const stored = new Map<string, string>();
  const kv = {
    create: (key: string, value: string): Promise<number> => {
      if (stored.has(key)) return Promise.reject(new Error("wrong last sequence"));
      stored.set(key, value);
      return Promise.resolve(stored.size);
    },
    // As KV: keys(filter) with a last-token wildcard, get by key.
    keys: (filter: string | string[] = ">") => {
      const f = String(filter);
      const prefix = f.endsWith(".*") ? f.slice(0, -1) : f;
      const matching = [...stored.keys()].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes("."));
      // An iterable is what `for await` over kv.keys() needs.
      return Promise.resolve(matching);
    },
    get: (key: string) => Promise.resolve(stored.has(key) ? { operation: "PUT", value: new TextEncoder().encode(stored.get(key)) } : null),
  } as unknown as ConstructorParameters<typeof FreezeEdgeWatcher>[1];
  const noCleanup = { jsm: {} as never };
  const log = createLogger("test", "silent");

  it("a window's opening and closing, and a timed freeze's end, each at its exact millisecond, recorded once by two coordinators ticking apart", async () => {
    stored.clear();
    const weekend = freezeRecord("prod", true, "weekend", ANONYMOUS, new Date("2026-12-01T00:00:00Z"), { name: "weekend", windows: ["fri 15:00-mon 08:00"], timeZone: "Europe/Berlin" });
    const brief = freezeRecord("prod", true, "incident", ANONYMOUS, new Date("2026-12-04T13:00:00Z"), { until: new Date("2026-12-04T14:10:00.250Z") });
    const entries = [
      { key: "prod.weekend", record: weekend, revision: 1 },
      { key: "prod", record: brief, revision: 2 },
    ];
    const one = new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log);
    const two = new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log);
    for (const [w, t] of [[one, "2026-12-04T13:59:58Z"], [two, "2026-12-04T13:59:59.5Z"], [one, "2026-12-04T14:00:03Z"], [two, "2026-12-04T14:00:01.7Z"], [one, "2026-12-04T14:10:04Z"], [two, "2026-12-04T14:10:02Z"], [one, "2026-12-07T07:00:04Z"], [two, "2026-12-07T07:00:00.001Z"]] as const) {
      await w.check(at(t));
    }
    const edges = [...stored.entries()].map(([k, v]) => [k, parseFreezeEdge(new TextEncoder().encode(v), k)] as const);
    expect(edges.map(([k, e]) => [k, e.edge, e.at])).toEqual([
      ["=edge.prod.weekend.1796392800000", "window_opened", "2026-12-04T14:00:00.000Z"], // Fri 15:00 in Berlin
      ["=edge.prod.1796393400250", "ended", "2026-12-04T14:10:00.250Z"],
      ["=edge.prod.weekend.1796626800000", "window_closed", "2026-12-07T07:00:00.000Z"], // Mon 08:00 in Berlin
    ]);
    expect(edges[0]![1].freeze).toEqual(weekend);
    expect(at("2026-12-04T14:00:00Z")).toBe(1796392800000);
  });

  it("an edge while no coordinator ran is recorded by the next one's first look, late, at its own time, once; a state last told over 7 days ago is only learnt", async () => {
    stored.clear();
    const weekend = freezeRecord("prod", true, "weekend", ANONYMOUS, new Date("2026-12-01T00:00:00Z"), { name: "weekend", windows: ["fri 15:00-mon 08:00"], timeZone: "Europe/Berlin" });
    const entries = [{ key: "prod.weekend", record: weekend, revision: 1 }];
    // A coordinator looks before the window, then none runs until Saturday.
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-04T13:59:58Z"));
    expect(stored.size).toBe(0);
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-05T10:00:00Z"));
    expect([...stored.keys()]).toEqual([`=edge.prod.weekend.${at("2026-12-04T14:00:00Z")}`]);
    // The next coordinator to start finds it told: nothing more.
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-05T11:00:00Z"));
    expect(stored.size).toBe(1);
    // Down again until Monday morning: the window's close, from the marker's state.
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-07T09:00:00Z"));
    const edges = [...stored.entries()].map(([k, v]) => parseFreezeEdge(new TextEncoder().encode(v), k));
    expect(edges.map((e) => [e.edge, e.at])).toEqual([
      ["window_opened", "2026-12-04T14:00:00.000Z"],
      ["window_closed", "2026-12-07T07:00:00.000Z"],
    ]);
    // Down for the whole of the next weekend: opened and closed again, the state now as last told: nothing to tell.
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-14T09:00:00Z"));
    expect(stored.size).toBe(2);
    // Last told over 7 days before (markers of that age are purged): only learnt.
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log).check(at("2026-12-19T10:00:00Z"));
    expect(stored.size).toBe(2);
    // A timed freeze that ended while none ran: told at its end.
    const brief = freezeRecord("qa", true, "brief", ANONYMOUS, new Date("2026-12-05T10:00:00Z"), { until: new Date("2026-12-05T12:00:00.500Z") });
    await new FreezeEdgeWatcher(noCleanup, kv, { entries: () => [{ key: "qa", record: brief, revision: 1 }] }, log).check(at("2026-12-05T15:00:00Z"));
    expect(stored.has(`=edge.qa.${at("2026-12-05T12:00:00.500Z")}`)).toBe(true);
  });

  it("a freeze rewritten between two looks is no edge (its write is notified), nor is a first look", async () => {
    stored.clear();
    const r1 = freezeRecord("prod", true, "a", ANONYMOUS, new Date("2026-12-04T13:00:00Z"));
    const r2 = freezeRecord("prod", false, "", ANONYMOUS, new Date("2026-12-04T13:30:00Z"));
    let entries = [{ key: "prod", record: r1, revision: 1 }];
    const w = new FreezeEdgeWatcher(noCleanup, kv, { entries: () => entries }, log);
    await w.check(at("2026-12-04T13:20:00Z"));
    entries = [{ key: "prod", record: r2, revision: 2 }];
    await w.check(at("2026-12-04T13:40:00Z"));
    expect(stored.size).toBe(0);
    expect(edgeTime((ms) => ms >= 1000, 0, 5000)).toBe(1000);
    // Written while watched and ended before the next look (a freeze of 2 s, looks every 5 s): compared from its write.
    const short = freezeRecord("prod", true, "b", ANONYMOUS, new Date("2026-12-04T13:40:01Z"), { until: new Date("2026-12-04T13:40:03Z") });
    entries = [{ key: "prod", record: short, revision: 3 }];
    await w.check(at("2026-12-04T13:40:05Z"));
    expect([...stored.keys()]).toEqual([`=edge.prod.${at("2026-12-04T13:40:03Z")}`]);
  });
});
