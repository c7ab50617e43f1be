// Label selectors, in Kubernetes' syntax, choose a deployment's targets by
// the labels agents register with (AgentRecord.labels):
//
//   role=web,zone in (a,b)      role == web (also "==") AND zone is a or b
//   tier!=db                    tier absent, or not db
//   zone notin (c,d)            zone absent, or neither c nor d
//   canary                      the label exists (any value)
//   !canary                     the label does not exist
//
// A comma is AND; there is no OR, as in Kubernetes. Whitespace between
// tokens is ignored. `k=` (and `k!=`) compare with the empty value. Keys
// follow the agents' own label key rule (MAP_KEY), so a selector naming a
// key no agent could have ("role:web") is an error, not an empty match.
// Errors name the field and the 1-based position of the offending token:
//   selector: at position 6: expected a value after "=", found ","
// formatSelector prints the canonical form (requirements sorted by key, set
// values sorted and deduplicated, no spaces but around in/notin): what a
// deployment records and its request hash uses, so spacing or order never
// makes a different request.
import { ValidationError } from "./errors.js";
import { MAP_KEY, MAP_KEY_RULE } from "./validate.js";

export type Requirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

/** Requirements that must all hold (comma = AND). Never empty. */
export type Selector = Requirement[];

/** Longest selector accepted, in characters. */
export const MAX_SELECTOR_LENGTH = 1024;
/** Longest value accepted (agent label values are free strings; these are what can be typed in a selector). */
const MAX_VALUE_LENGTH = 256;

/** Characters that end an identifier (besides whitespace). */
const SPECIAL = new Set(["!", "=", "(", ")", ",", "<", ">"]);
const WHITESPACE = /\s/;

type TokenKind = "ident" | "!" | "=" | "==" | "!=" | "(" | ")" | "," | "<" | ">" | "end";

interface Token {
  kind: TokenKind;
  text: string;
  /** 1-based position of the token's first character. */
  pos: number;
}

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (WHITESPACE.test(c)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if ((c === "=" || c === "!") && text[i + 1] === "=") {
      tokens.push({ kind: c === "=" ? "==" : "!=", text: `${c}=`, pos });
      i += 2;
    } else if (SPECIAL.has(c)) {
      tokens.push({ kind: c as TokenKind, text: c, pos });
      i++;
    } else {
      let j = i;
      while (j < text.length && !SPECIAL.has(text[j]!) && !WHITESPACE.test(text[j]!)) j++;
      tokens.push({ kind: "ident", text: text.slice(i, j), pos });
      i = j;
    }
  }
  tokens.push({ kind: "end", text: "", pos: text.length + 1 });
  return tokens;
}

const shown = (t: Token): string => (t.kind === "end" ? "the end" : JSON.stringify(t.text.length > 40 ? `${t.text.slice(0, 40)}…` : t.text));

class Parser {
  #i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly field: string,
  ) {}

  get #peek(): Token {
    return this.tokens[this.#i]!;
  }

  #next(): Token {
    const t = this.tokens[this.#i]!;
    if (t.kind !== "end") this.#i++;
    return t;
  }

  #fail(t: Token, problem: string): never {
    throw new ValidationError(this.field, `at position ${t.pos}: ${problem}`);
  }

  #key(): string {
    const t = this.#next();
    if (t.kind !== "ident") this.#fail(t, `expected a label key, found ${shown(t)}`);
    if (!MAP_KEY.test(t.text)) this.#fail(t, `label key ${shown(t)} is not valid: use ${MAP_KEY_RULE}`);
    return t.text;
  }

  #value(t: Token): string {
    if (t.text.length > MAX_VALUE_LENGTH) this.#fail(t, `value is longer than ${MAX_VALUE_LENGTH} characters`);
    return t.text;
  }

  /** `(` VALUE {`,` VALUE} `)` after in/notin. */
  #values(op: string): string[] {
    const open = this.#next();
    if (open.kind !== "(") this.#fail(open, `expected "(" after "${op}", found ${shown(open)}`);
    const values: string[] = [];
    for (;;) {
      const v = this.#next();
      if (v.kind !== "ident") this.#fail(v, `expected a value in the set of "${op}", found ${shown(v)}`);
      values.push(this.#value(v));
      const sep = this.#next();
      if (sep.kind === ")") return values;
      if (sep.kind !== ",") this.#fail(sep, `expected "," or ")" in the set of "${op}", found ${shown(sep)}`);
    }
  }

  #requirement(): Requirement {
    if (this.#peek.kind === "!") {
      this.#next();
      return { key: this.#key(), op: "!exists" };
    }
    const key = this.#key();
    const t = this.#peek;
    switch (t.kind) {
      case "end":
      case ",":
        return { key, op: "exists" };
      case "=":
      case "==":
      case "!=": {
        this.#next();
        const v = this.#peek;
        // `k=` compares with the empty value, as in Kubernetes.
        if (v.kind === "end" || v.kind === ",") return { key, op: t.kind === "!=" ? "!=" : "=", value: "" };
        if (v.kind !== "ident") this.#fail(v, `expected a value after "${t.text}", found ${shown(v)}`);
        this.#next();
        return { key, op: t.kind === "!=" ? "!=" : "=", value: this.#value(v) };
      }
      case "ident":
        if (t.text === "in" || t.text === "notin") {
          this.#next();
          return { key, op: t.text, values: this.#values(t.text) };
        }
        break;
      default:
        break;
    }
    return this.#fail(t, `expected "=", "==", "!=", "in", "notin", "," or the end after label key "${key}", found ${shown(t)}`);
  }

  parse(): Selector {
    const out: Selector = [];
    for (;;) {
      out.push(this.#requirement());
      const t = this.#next();
      if (t.kind === "end") return out;
      if (t.kind !== ",") this.#fail(t, `expected "," or the end after a requirement, found ${shown(t)}`);
    }
  }
}

/** Parses a selector; a ValidationError naming `field` and the position otherwise. */
export function parseSelector(text: string, field = "selector"): Selector {
  if (text.length > MAX_SELECTOR_LENGTH) throw new ValidationError(field, `must be at most ${MAX_SELECTOR_LENGTH} characters`);
  return new Parser(lex(text), field).parse();
}

function requirementText(r: Requirement): string {
  switch (r.op) {
    case "=":
    case "!=":
      return `${r.key}${r.op}${r.value}`;
    case "in":
    case "notin":
      return `${r.key} ${r.op} (${[...new Set(r.values)].sort().join(",")})`;
    case "exists":
      return r.key;
    case "!exists":
      return `!${r.key}`;
  }
}

/**
 * The canonical text of a selector: requirements sorted by key (then by
 * text), duplicates dropped, set values sorted and deduplicated. Parsing it
 * gives back a selector that matches exactly the same label sets.
 */
export function formatSelector(sel: Selector): string {
  const byKey = [...sel].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const texts: string[] = [];
  // Stable by key; within one key, by text, so the form does not depend on the order given.
  for (let i = 0; i < byKey.length; ) {
    let j = i;
    while (j < byKey.length && byKey[j]!.key === byKey[i]!.key) j++;
    texts.push(...[...new Set(byKey.slice(i, j).map(requirementText))].sort());
    i = j;
  }
  return texts.join(",");
}

/** Whether labels satisfy every requirement (Kubernetes semantics: != and notin hold when the label is absent). */
export function matchesSelector(sel: Selector, labels: Readonly<Record<string, string>>): boolean {
  return sel.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case "=":
        return has && v === r.value;
      case "!=":
        return !has || v !== r.value;
      case "in":
        return has && r.values.includes(v!);
      case "notin":
        return !has || !r.values.includes(v!);
      case "exists":
        return has;
      case "!exists":
        return !has;
    }
  });
}
