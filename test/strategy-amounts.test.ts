// max_concurrency / max_failures as a count or a percentage of the targets
// (services/shared/src/amounts.ts), their validation in CreateDeployment
// (services/coordinator/src/requests.ts), the strategy a deployment records
// (resolveRequest.ts resolveStrategy), and the request hash: pure
// functions, no NATS.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveStrategy } from "../services/coordinator/src/resolveRequest.js";
import { requestHash, validateCreate, type CreateInput } from "../services/coordinator/src/requests.js";
import { ValidationError, parsePercent, parseSpec, resolveMaxConcurrency, resolveMaxFailures } from "../services/shared/src/index.js";

const DEFAULTS = { deliveryTimeoutMs: 60_000, applyTimeoutMs: 600_000 };
const base = { requestId: "r1", app: "web", environment: "prod", changeset: { version: "v1" } };

function invalid(req: object): ValidationError {
  try {
    validateCreate(req, DEFAULTS);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(req)} to be refused`);
}

describe("percentages resolve against the targets at creation", () => {
  it.each([
    // [percent, targets, max_concurrency = max(1, ceil(p% × n)), max_failures = floor(p% × n)]
    [50, 3, 2, 1],
    [10, 3, 1, 0],
    [1, 3, 1, 0],
    [100, 3, 3, 3],
    [33, 3, 1, 0],
    [34, 3, 2, 1],
    [25, 8, 2, 2],
    [10, 30, 3, 3],
    [10, 31, 4, 3],
    [0, 7, 1, 0], // 0% is refused for max_concurrency before it gets here; at least 1 all the same
    [99, 100_000, 99_000, 99_000],
  ])("%i%% of %i targets: max_concurrency %i, max_failures %i", (p, n, conc, fail) => {
    expect(resolveMaxConcurrency({ percent: p }, n)).toBe(conc);
    expect(resolveMaxFailures({ percent: p }, n)).toBe(fail);
  });

  it("a count is used as given, whatever the number of targets", () => {
    expect(resolveMaxConcurrency({ count: 5 }, 2)).toBe(5);
    expect(resolveMaxFailures({ count: 0 }, 100)).toBe(0);
  });

  it("for any percentage and target count: concurrency within [1, n] and >= p% of n; failures within [0, n] and <= p% of n, exact integers", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 100_000 }), (p, n) => {
        const c = resolveMaxConcurrency({ percent: p }, n);
        const f = resolveMaxFailures({ percent: p }, n);
        expect(Number.isInteger(c) && Number.isInteger(f)).toBe(true);
        expect(c).toBeGreaterThanOrEqual(1);
        expect(c).toBeLessThanOrEqual(n);
        expect(c * 100).toBeGreaterThanOrEqual(p * n); // ceil
        expect((c - 1) * 100).toBeLessThan(Math.max(p * n, 100)); // the least such (or 1)
        expect(f * 100).toBeLessThanOrEqual(p * n); // floor
        expect((f + 1) * 100).toBeGreaterThan(p * n); // the greatest such
      }),
    );
  });

  it("resolveStrategy keeps the percentage for display beside the resolved count, and nothing extra for counts", () => {
    const st = { maxConcurrency: { percent: 50 }, maxFailures: { percent: 34 }, deliveryTimeoutMs: 1, applyTimeoutMs: 2 };
    expect(resolveStrategy(st, 3)).toEqual({ maxConcurrency: 2, maxFailures: 1, maxConcurrencyPercent: 50, maxFailuresPercent: 34, deliveryTimeoutMs: 1, applyTimeoutMs: 2 });
    expect(resolveStrategy({ ...st, maxConcurrency: { count: 4 }, maxFailures: { count: 0 } }, 3)).toEqual({ maxConcurrency: 4, maxFailures: 0, deliveryTimeoutMs: 1, applyTimeoutMs: 2 });
  });

  it("a spec with percentages reads back as written; one with an out-of-range percentage does not", () => {
    const spec = {
      id: "d-1",
      requestId: "r",
      requestHash: "h",
      app: "web",
      environment: "prod",
      changeset: { version: "v1" },
      strategy: { maxConcurrency: 2, maxFailures: 0, maxConcurrencyPercent: 50, maxFailuresPercent: 0, deliveryTimeoutMs: 1000, applyTimeoutMs: 1000 },
      targets: ["a1", "a2", "a3"],
      requestedBy: "",
      selector: "role=web,zone in (a,b)",
    };
    expect(parseSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
    expect(() => parseSpec({ ...spec, strategy: { ...spec.strategy, maxConcurrencyPercent: 0 } })).toThrow(/spec\.strategy\.maxConcurrencyPercent/);
    expect(() => parseSpec({ ...spec, strategy: { ...spec.strategy, maxFailuresPercent: 101 } })).toThrow(/spec\.strategy\.maxFailuresPercent/);
  });
});

describe("parsePercent", () => {
  it.each(["0%", "1%", "10%", "100%", "007%"])("%s is a percentage", (t) => expect(parsePercent(t, "f", 0)).toBe(Number(t.slice(0, -1))));
  it.each(["", "%", "10", "10 %", " 10%", "10.5%", "-1%", "101%", "1000%", "1e1%", "0x10%", "10%%"])("%j is not", (t) => {
    expect(() => parsePercent(t, "strategy.max_failures_percent", 0)).toThrow(/^strategy\.max_failures_percent: .* use a whole percentage from 0% to 100%/);
  });
  it("0% is below the minimum of max_concurrency", () => {
    expect(() => parsePercent("0%", "strategy.max_concurrency_percent", 1)).toThrow(/from 1% to 100%/);
  });
});

describe("CreateDeployment validation of percentages and selectors", () => {
  it("takes a count or a percentage for each; the default is count 1 / count 0", () => {
    expect(validateCreate(base, DEFAULTS).strategy).toMatchObject({ maxConcurrency: { count: 1 }, maxFailures: { count: 0 } });
    expect(validateCreate({ ...base, strategy: { maxConcurrencyPercent: "10%", maxFailuresPercent: "25%" } }, DEFAULTS).strategy).toMatchObject({
      maxConcurrency: { percent: 10 },
      maxFailures: { percent: 25 },
    });
    // proto3: an empty string is an unset _percent field.
    expect(validateCreate({ ...base, strategy: { maxConcurrency: 3, maxConcurrencyPercent: "" } }, DEFAULTS).strategy.maxConcurrency).toEqual({ count: 3 });
  });

  it.each([
    [{ maxConcurrencyPercent: "0%" }, "strategy.max_concurrency_percent", "from 1% to 100%"],
    [{ maxConcurrencyPercent: "101%" }, "strategy.max_concurrency_percent", "from 1% to 100%"],
    [{ maxConcurrencyPercent: "10" }, "strategy.max_concurrency_percent", "whole percentage"],
    [{ maxFailuresPercent: "-5%" }, "strategy.max_failures_percent", "from 0% to 100%"],
    [{ maxFailuresPercent: "12.5%" }, "strategy.max_failures_percent", "from 0% to 100%"],
    [{ maxConcurrency: 2, maxConcurrencyPercent: "10%" }, "strategy.max_concurrency_percent", "give strategy.max_concurrency or strategy.max_concurrency_percent, not both"],
    [{ maxFailures: 0, maxFailuresPercent: "10%" }, "strategy.max_failures_percent", "not both"],
  ])("strategy %j is INVALID_ARGUMENT naming %s", (strategy, field, problem) => {
    const err = invalid({ ...base, strategy });
    expect(err.field).toBe(field);
    expect(err.message).toMatch(new RegExp(`^${field.replace(/\./g, "\\.")}: `));
    expect(err.message).toContain(problem);
  });

  it("a selector is parsed and kept in canonical form; with targets, or unparseable, it is INVALID_ARGUMENT naming selector", () => {
    expect(validateCreate({ ...base, selector: " zone in (b, a) , role = web" }, DEFAULTS).selector?.text).toBe("role=web,zone in (a,b)");
    expect(validateCreate({ ...base, selector: "" }, DEFAULTS).selector).toBeUndefined();
    const both = invalid({ ...base, selector: "role=web", targets: ["a1"] });
    expect([both.field, both.message]).toEqual(["selector", "selector: give targets or a selector, not both"]);
    const bad = invalid({ ...base, selector: "role=web,zone in a" });
    expect(bad.field).toBe("selector");
    expect(bad.message).toBe('selector: at position 18: expected "(" after "in", found "a"');
  });
});

describe("requestHash", () => {
  const hash = (req: object): string => requestHash(validateCreate({ ...base, ...req }, DEFAULTS));

  it("a count and a percentage are different requests, and so are two selectors; spelling the same selector differently is not", () => {
    expect(hash({ strategy: { maxConcurrency: 10 } })).not.toBe(hash({ strategy: { maxConcurrencyPercent: "10%" } }));
    expect(hash({ strategy: { maxFailuresPercent: "10%" } })).not.toBe(hash({ strategy: { maxFailuresPercent: "20%" } }));
    expect(hash({ selector: "role=web" })).not.toBe(hash({ selector: "role=db" }));
    expect(hash({ selector: "role=web" })).not.toBe(hash({}));
    expect(hash({ selector: "zone in (b,a),role=web" })).toBe(hash({ selector: "role = web, zone in (a, b)" }));
  });

  it("is unchanged for requests without the new fields (a retry across the upgrade is the same request)", () => {
    // The canonical body as it was hashed before percentages and selectors.
    const input: CreateInput = validateCreate({ ...base, strategy: { maxConcurrency: 2 }, targets: ["a1"] }, DEFAULTS);
    const old = createHash("sha256")
      .update(JSON.stringify(["web", "prod", "v1", null, { maxConcurrency: 2, maxFailures: 0, deliveryTimeoutMs: 60_000, applyTimeoutMs: 600_000 }, ["a1"], ""]))
      .digest("hex");
    expect(requestHash(input)).toBe(old);
  });
});
