// Environment policies, the rules alone: what a stored record must hold, and
// which creations a policy refuses (policies.ts policyRefusal, policySoak).
import { describe, expect, it } from "vitest";
import { parsePolicyRecord, policyRecord, type PolicyRecord } from "../services/shared/src/index.js";
import { policyRefusal, policySoak } from "../services/coordinator/src/policies.js";
import { policyNotificationOf } from "../services/coordinator/src/notifier.js";

const by = { name: "alice", via: "token" as const };
const at = new Date("2026-12-05T10:00:00Z");
const bytes = (o: object): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const input = (more: object = {}) => ({ app: "web", environment: "prod", strategy: { maxConcurrency: { count: 1 }, maxFailures: { count: 0 }, deliveryTimeoutMs: 1, applyTimeoutMs: 1 }, ...more });

describe("policy records", () => {
  it("reads back what policyRecord writes, and refuses what SetEnvironmentPolicy would", () => {
    const r = policyRecord("prod", { promoteFrom: "staging", minSoakMs: 7_200_000, requireCanary: true }, "why", by, at);
    expect(parsePolicyRecord(bytes(r), "prod")).toEqual(r);
    const bad: [object, string, RegExp][] = [
      [{ ...r, schema: "x" }, "prod", /^policy\.schema: expected deploy\.policy\.v1/],
      [r, "staging", /^policy\.environment: prod stored under key staging/],
      [{ ...r, promoteFrom: "prod" }, "prod", /^policy\.promote_from: must be another environment than prod/],
      [{ ...r, promoteFrom: undefined }, "prod", /^policy\.min_soak: needs promote_from/],
      [{ ...r, minSoakMs: "2h" }, "prod", /^policy\.minSoakMs: must be an integer/],
      [{ ...r, requireCanary: "yes" }, "prod", /^policy\.requireCanary: must be true or false/],
    ];
    for (const [o, key, msg] of bad) expect(() => parsePolicyRecord(bytes(o), key)).toThrow(msg);
  });

  it("an app's policy is stored under <environment>.<app>, and read back only there", () => {
    const r = policyRecord("prod", { requireCanary: true }, "payments canaries first", by, at, "payments");
    expect(r.app).toBe("payments");
    expect(parsePolicyRecord(bytes(r), "prod.payments")).toEqual(r);
    expect(() => parsePolicyRecord(bytes(r), "prod")).toThrow(/^policy\.environment: prod\.payments stored under key prod/);
    expect(() => parsePolicyRecord(bytes({ ...r, app: "a b" }), "prod.a b")).toThrow(/^policy\.app: /);
  });
});

describe("policyRefusal", () => {
  const p: PolicyRecord = policyRecord("prod", { promoteFrom: "staging", requireCanary: true }, "prod runs what staging ran", by, at);

  it("refuses a new release and a promotion from elsewhere, naming the rule, who set it and why", () => {
    expect(policyRefusal(input(), [p])).toBe(
      "environment prod's policy (set by alice at 2026-12-05T10:00:00.000Z: prod runs what staging ran) accepts only promotions from staging, and this request deploys a new release: " +
        "deploy staging's desired release with promote_from staging (deployctl deploy --app web --env prod --from-env staging); rollbacks, reverts and convergence still run",
    );
    expect(policyRefusal(input({ promoteFrom: "qa" }), [p])).toContain("and this request promotes from qa:");
  });

  it("asks a canary wave of a promotion: none, or a count of 0, is refused; a count or a percentage is not", () => {
    expect(policyRefusal(input({ promoteFrom: "staging" }), [p])).toContain("asks every deployment for a canary wave, and this request has none");
    expect(policyRefusal(input({ promoteFrom: "staging", strategy: { ...input().strategy, canary: { count: 0 } } }), [p])).toContain("canary wave");
    expect(policyRefusal(input({ promoteFrom: "staging", strategy: { ...input().strategy, canary: { count: 1 } } }), [p])).toBeUndefined();
    expect(policyRefusal(input({ promoteFrom: "staging", strategy: { ...input().strategy, canary: { percent: 10 } } }), [p])).toBeUndefined();
  });

  it("never refuses a rollback, a revert or a convergence, nor anything without a policy", () => {
    const restores = { deploymentId: "d-1", version: "v1", release: "v1-1", changeset: { version: "v1" } };
    expect(policyRefusal(input({ restores }), [p])).toBeUndefined();
    expect(policyRefusal(input({ convergesTo: "d-1" }), [p])).toBeUndefined();
    expect(policyRefusal(input(), [])).toBeUndefined();
  });

  it("an app's policy adds to the environment's: either refuses, each named; the other apps answer to the environment's alone", () => {
    const env = policyRecord("prod", { promoteFrom: "staging" }, "prod runs what staging ran", by, at);
    const app = policyRecord("prod", { requireCanary: true }, "web canaries first", by, at, "web");
    const promoted = input({ promoteFrom: "staging" });
    expect(policyRefusal(input(), [env, app])).toMatch(/^environment prod's policy \(set by alice .*\) accepts only promotions from staging/);
    expect(policyRefusal(promoted, [env, app])).toBe(
      "app web's policy in prod (set by alice at 2026-12-05T10:00:00.000Z: web canaries first) asks every deployment for a canary wave, and this request has none: " +
        "give strategy.canary or strategy.canary_percent (deployctl deploy --canary 1); rollbacks, reverts and convergence still run",
    );
    expect(policyRefusal({ ...promoted, strategy: { ...input().strategy, canary: { count: 1 } } }, [env, app])).toBeUndefined();
    expect(policyRefusal(input(), [app])).toMatch(/^app web's policy in prod/);
  });

  it("a notification names an app's policy as the app's", () => {
    const set = policyRecord("prod", { requireCanary: true }, "web canaries first", by, at, "web");
    expect(policyNotificationOf(set, 7).text).toBe("app web's policy in prod set by alice at 2026-12-05T10:00:00.000Z: web canaries first; it accepts a canary wave");
    const cleared = policyRecord("prod", {}, "done", by, at, "web");
    expect(policyNotificationOf(cleared, 8).text).toBe(
      "app web's policy in prod cleared by alice at 2026-12-05T10:00:00.000Z: done; deployments of web to prod answer to the environment's policy alone",
    );
  });

  it("the longest least soak of the policies that apply is asked", () => {
    const env = policyRecord("prod", { promoteFrom: "staging", minSoakMs: 3_600_000 }, "", by, at);
    const app = policyRecord("prod", { promoteFrom: "staging", minSoakMs: 7_200_000 }, "", by, at, "web");
    expect(policySoak([env, app], "staging")).toEqual({ ms: 7_200_000, origin: "app web's policy in prod (set by alice at 2026-12-05T10:00:00.000Z)" });
    expect(policySoak([app, env], "staging")?.ms).toBe(7_200_000);
  });

  it("asks its least soak of promotions from the environment it names only", () => {
    const soaked = policyRecord("prod", { promoteFrom: "staging", minSoakMs: 3_600_000 }, "", by, at);
    expect(policySoak([soaked], "staging")).toEqual({ ms: 3_600_000, origin: "environment prod's policy (set by alice at 2026-12-05T10:00:00.000Z)" });
    expect(policySoak([soaked], "qa")).toBeUndefined();
    expect(policySoak([soaked], undefined)).toBeUndefined();
    expect(policySoak([p], "staging")).toBeUndefined();
  });
});
