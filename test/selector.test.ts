// Label selectors (services/shared/src/selector.ts): Kubernetes' syntax,
// errors that name the field and the position, a canonical form that parses
// back to the same meaning, and Kubernetes' matching semantics.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAP_KEY, ValidationError, formatSelector, matchesSelector, parseSelector, type Requirement, type Selector } from "../services/shared/src/index.js";

function parseError(text: string, field = "selector"): ValidationError {
  try {
    parseSelector(text, field);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(text)} not to parse`);
}

describe("parseSelector", () => {
  it("reads every operator of Kubernetes' syntax, comma = AND", () => {
    expect(parseSelector("role=web,zone in (a,b)")).toEqual([
      { key: "role", op: "=", value: "web" },
      { key: "zone", op: "in", values: ["a", "b"] },
    ]);
    expect(parseSelector("role==web")).toEqual([{ key: "role", op: "=", value: "web" }]);
    expect(parseSelector("tier!=db")).toEqual([{ key: "tier", op: "!=", value: "db" }]);
    expect(parseSelector("zone notin (c,d)")).toEqual([{ key: "zone", op: "notin", values: ["c", "d"] }]);
    expect(parseSelector("canary")).toEqual([{ key: "canary", op: "exists" }]);
    expect(parseSelector("!canary")).toEqual([{ key: "canary", op: "!exists" }]);
    expect(parseSelector("k=")).toEqual([{ key: "k", op: "=", value: "" }]);
    expect(parseSelector("example.com/team=a-b_c.d")).toEqual([{ key: "example.com/team", op: "=", value: "a-b_c.d" }]);
  });

  it("ignores whitespace between tokens", () => {
    expect(parseSelector("  role = web ,  zone in( a , b )  , ! canary ")).toEqual(parseSelector("role=web,zone in (a,b),!canary"));
  });

  it("in/notin are operators only after a key: a label may be called in", () => {
    expect(parseSelector("in=x,notin")).toEqual([
      { key: "in", op: "=", value: "x" },
      { key: "notin", op: "exists" },
    ]);
    expect(parseSelector("notin in (in)")).toEqual([{ key: "notin", op: "in", values: ["in"] }]);
  });

  it.each([
    ["", 1, "expected a label key, found the end"],
    ["   ", 4, "expected a label key, found the end"],
    ["role=web,", 10, "expected a label key, found the end"],
    ["role=web,,zone=a", 10, 'expected a label key, found ","'],
    ["zone in a", 9, 'expected "(" after "in", found "a"'],
    ["zone in ()", 10, 'expected a value in the set of "in", found ")"'],
    ["zone in (a,)", 12, 'expected a value in the set of "in", found ")"'],
    ["zone in (a b)", 12, 'expected "," or ")" in the set of "in", found "b"'],
    ["zone in (a", 11, 'expected "," or ")" in the set of "in", found the end'],
    ["role=(web)", 6, 'expected a value after "=", found "("'],
    ["role web", 6, 'expected "=", "==", "!=", "in", "notin", "," or the end after label key "role", found "web"'],
    ["replicas>3", 9, 'found ">"'],
    ["!canary=yes", 8, 'expected "," or the end after a requirement, found "="'],
    ["role=web zone=a", 10, 'expected "," or the end after a requirement, found "zone"'],
    ["role:web", 1, 'label key "role:web" is not valid'],
    ["=web", 1, 'expected a label key, found "="'],
  ])("%j is INVALID_ARGUMENT at position %i", (text, pos, problem) => {
    const err = parseError(text);
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.field).toBe("selector");
    expect(err.message).toMatch(new RegExp(`^selector: at position ${pos}: `));
    expect(err.message).toContain(problem);
  });

  it("names the field it is given, and refuses a selector over 1024 characters", () => {
    expect(parseError("a in", "spec.selector").message).toMatch(/^spec\.selector: at position 5: /);
    expect(parseError(`k in (${"v,".repeat(600)}v)`).message).toBe("selector: must be at most 1024 characters");
  });
});

describe("matchesSelector", () => {
  const labels = { role: "web", zone: "a", canary: "" };
  it.each([
    ["role=web", true],
    ["role=db", false],
    ["role=web,zone in (a,b)", true],
    ["role=web,zone in (b,c)", false],
    ["zone notin (b,c)", true],
    ["tier notin (db)", true], // absent: notin holds, as in Kubernetes
    ["tier!=db", true], // absent: != holds
    ["role!=web", false],
    ["canary", true],
    ["!canary", false],
    ["!tier", true],
    ["tier", false],
    ["canary=", true], // present with the empty value
    ["tier=", false], // absent is not the empty value
    ["tier in (db)", false],
  ])("%j on {role: web, zone: a, canary: ''} is %s", (text, want) => {
    expect(matchesSelector(parseSelector(text), labels)).toBe(want);
  });

  it("does not see inherited properties as labels", () => {
    expect(matchesSelector(parseSelector("toString"), {})).toBe(false);
    expect(matchesSelector(parseSelector("constructor notin (x)"), {})).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Properties.

const KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_./-".split("");
const key = fc.string({ unit: fc.constantFrom(...KEY_CHARS), minLength: 1, maxLength: 12 }).filter((k) => MAP_KEY.test(k));
const value = fc.string({ unit: fc.constantFrom(..."abcxyz019_.-:@".split("")), minLength: 1, maxLength: 8 });
const small = fc.constantFrom("role", "zone", "tier", "in", "notin");
const anyKey = fc.oneof(small, key);
const anyValue = fc.oneof(fc.constantFrom("web", "a", "b", "in"), value);

const requirement: fc.Arbitrary<Requirement> = fc.oneof(
  fc.record({ key: anyKey, op: fc.constantFrom("=" as const, "!=" as const), value: fc.oneof(anyValue, fc.constant("")) }),
  fc.record({ key: anyKey, op: fc.constantFrom("in" as const, "notin" as const), values: fc.array(anyValue, { minLength: 1, maxLength: 4 }) }),
  fc.record({ key: anyKey, op: fc.constantFrom("exists" as const, "!exists" as const) }),
);
const selector: fc.Arbitrary<Selector> = fc.array(requirement, { minLength: 1, maxLength: 6 });
const labelSet = fc.dictionary(small, fc.constantFrom("web", "a", "b", "in", "", "x"), { maxKeys: 5 });

/** The same selector written another way: extra spaces, == for =. */
function respell(sel: Selector, spaces: string[]): string {
  let i = 0;
  const sp = (): string => spaces[i++ % spaces.length] ?? "";
  return sel
    .map((r) => {
      switch (r.op) {
        case "=":
          return `${sp()}${r.key}${sp()}==${sp()}${r.value}${sp()}`;
        case "!=":
          return `${sp()}${r.key}${sp()}!=${sp()}${r.value}${sp()}`;
        case "in":
        case "notin":
          return `${sp()}${r.key} ${r.op}${sp()}(${r.values.map((v) => `${sp()}${v}${sp()}`).join(",")})${sp()}`;
        case "exists":
          return `${sp()}${r.key}${sp()}`;
        case "!exists":
          return `${sp()}!${sp()}${r.key}${sp()}`;
      }
    })
    .join(",");
}

describe("selector properties", () => {
  it("the canonical form parses back to a selector that matches exactly the same label sets, and is a fixed point", () => {
    fc.assert(
      fc.property(selector, fc.array(labelSet, { minLength: 1, maxLength: 8 }), (sel, labelSets) => {
        const text = formatSelector(sel);
        const back = parseSelector(text);
        expect(formatSelector(back)).toBe(text);
        for (const labels of labelSets) expect(matchesSelector(back, labels)).toBe(matchesSelector(sel, labels));
      }),
    );
  });

  it("spacing, == for =, and the order of requirements and set values never change the canonical form", () => {
    fc.assert(
      fc.property(selector, fc.array(fc.constantFrom("", " ", "  ", "\t"), { minLength: 1, maxLength: 5 }), fc.nat(), (sel, spaces, seed) => {
        const shuffled = [...sel].map((r) => ("values" in r ? { ...r, values: [...r.values].reverse() } : r));
        if (shuffled.length > 1) shuffled.push(shuffled.splice(seed % shuffled.length, 1)[0]!);
        expect(formatSelector(parseSelector(respell(shuffled, spaces)))).toBe(formatSelector(sel));
      }),
    );
  });

  it("a comma is AND: a selector matches iff each of its requirements does", () => {
    fc.assert(
      fc.property(selector, labelSet, (sel, labels) => {
        expect(matchesSelector(sel, labels)).toBe(sel.every((r) => matchesSelector([r], labels)));
      }),
    );
  });

  it("!= and notin are the negations of = and in; !k of k", () => {
    fc.assert(
      fc.property(anyKey, anyValue, fc.array(anyValue, { minLength: 1, maxLength: 3 }), labelSet, (k, v, vs, labels) => {
        expect(matchesSelector([{ key: k, op: "!=", value: v }], labels)).toBe(!matchesSelector([{ key: k, op: "=", value: v }], labels));
        expect(matchesSelector([{ key: k, op: "notin", values: vs }], labels)).toBe(!matchesSelector([{ key: k, op: "in", values: vs }], labels));
        expect(matchesSelector([{ key: k, op: "!exists" }], labels)).toBe(!matchesSelector([{ key: k, op: "exists" }], labels));
      }),
    );
  });

  it("any text either parses or fails with a ValidationError naming the field and a position inside it (or its end)", () => {
    const alphabet = fc.constantFrom(..."ab=!(),<> in notin\t.:/".split(""), "in", "notin", "==", "!=");
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.array(alphabet, { maxLength: 20 }).map((a) => a.join(""))), (text) => {
        try {
          const sel = parseSelector(text);
          expect(sel.length).toBeGreaterThan(0);
          // What parses has a canonical form that parses too.
          expect(formatSelector(parseSelector(formatSelector(sel)))).toBe(formatSelector(sel));
        } catch (err) {
          expect(err).toBeInstanceOf(ValidationError);
          const m = /^selector: at position (\d+): /.exec((err as Error).message);
          expect(m, (err as Error).message).not.toBeNull();
          const pos = Number(m![1]);
          expect(pos).toBeGreaterThanOrEqual(1);
          expect(pos).toBeLessThanOrEqual(text.length + 1);
        }
      }),
    );
  });
});
