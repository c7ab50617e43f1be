// Weekly freeze windows (services/shared/src/freeze.ts), read in a time zone:
// which instants a window holds, across the week's end, midnight and a
// daylight saving change, and the errors that name what is wrong.
import { describe, expect, it } from "vitest";
import { canonicalWindow, checkTimeZone, freezeActive, freezeRecord, inWindows, minuteOfWeek, parseFreezeRecord, ANONYMOUS, ValidationError } from "../services/shared/src/index.js";

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
