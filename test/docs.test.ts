// The docs stay true: README.md (the front page) and docs/*.md are read as a
// user reads them, and every command they tell a user to type is checked
// against what runs it:
// - relative links and images resolve (and an anchor into a Markdown page
//   names one of its headings);
// - `npm run <script>` exists in package.json, and each `--flag` after `--`
//   is an option of the script it runs;
// - `deployctl <command> …` names a command of the BUILT CLI (dist/, as the
//   other tests assume) and uses only options its `--help` lists;
// - the `nats …` commands of docs/jetstream.md are ones test/nats-cli.test.ts
//   runs, and the `grpcurl` / `grpc-health-probe` commands of docs/api.md call
//   only what test/grpcurl.test.ts calls;
// - docs/configuration.md names exactly the environment variables the
//   coordinator's and the agent's config schemas declare;
// - README.md stays a front page (at most 200 lines) linking every page.
// Each problem names the file and line, and what is wrong.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/paths.js";

const CLI = join(ROOT, "dist/services/deployctl/src/main.js");
const README_MAX_LINES = 200;

// ---------------------------------------------------------------- Markdown

interface Doc {
  /** Path from the repository root, e.g. "docs/api.md". */
  file: string;
  text: string;
  /** The text with fenced code blocks blanked (newlines kept): prose and inline code. */
  prose: string;
  fences: Fence[];
  inline: CodeSpan[];
  headings: string[];
}

interface Fence {
  info: string;
  /** Content lines with their 1-based line numbers. */
  lines: { line: number; text: string }[];
}

/** A command-like piece of text: a logical line of a fenced block, or an inline code span. */
interface CodeSpan {
  line: number;
  text: string;
}

const lineAt = (text: string, offset: number): number => text.slice(0, offset).split("\n").length;
const where = (doc: Doc, line: number): string => `${doc.file}:${line}`;

function parseDoc(file: string): Doc {
  const text = readFileSync(join(ROOT, file), "utf8");
  const lines = text.split("\n");
  const fences: Fence[] = [];
  const proseLines: string[] = [];
  let open: { marker: string; fence: Fence } | undefined;
  lines.forEach((l, i) => {
    const m = /^\s{0,3}(?:\s*)(`{3,}|~{3,})(.*)$/.exec(l);
    if (open) {
      if (m && m[1]![0] === open.marker[0] && m[1]!.length >= open.marker.length && m[2]!.trim() === "") open = undefined;
      else open.fence.lines.push({ line: i + 1, text: l });
      proseLines.push("");
    } else if (m) {
      open = { marker: m[1]!, fence: { info: m[2]!.trim(), lines: [] } };
      fences.push(open.fence);
      proseLines.push("");
    } else {
      proseLines.push(l);
    }
  });
  const prose = proseLines.join("\n");
  const inline: CodeSpan[] = [];
  for (const m of prose.matchAll(/(`+)([\s\S]*?[^`])\1(?!`)/g)) {
    if (m[2]!.includes("\n\n")) continue;
    inline.push({ line: lineAt(prose, m.index), text: m[2]!.replace(/\s*\n\s*/g, " ").trim() });
  }
  const headings: string[] = [];
  for (const l of proseLines) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
    if (h) headings.push(h[1]!);
  }
  return { file, text, prose, fences, inline, headings };
}

/** GitHub's anchor for a heading (github-slugger), given the slugs already taken on the page. */
function slug(heading: string, taken: Map<string, number>): string {
  const plain = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .replace(/\*/g, "")
    .toLowerCase();
  const base = plain.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
  const n = taken.get(base);
  taken.set(base, (n ?? 0) + 1);
  return n === undefined ? base : `${base}-${n}`;
}

function anchorsOf(doc: Doc): Set<string> {
  const taken = new Map<string, number>();
  return new Set(doc.headings.map((h) => slug(h, taken)));
}

/** Logical lines of a fenced block: `\`-continued lines joined, and a synopsis's indented `[--…`/`--…` lines joined to the command above. */
function logicalLines(f: Fence): CodeSpan[] {
  const out: CodeSpan[] = [];
  let pending: CodeSpan | undefined;
  for (const { line, text } of f.lines) {
    if (pending) {
      pending.text += " " + text.trim();
    } else if (out.length > 0 && /^\s+(\[--|--)/.test(text) && /\bdeployctl\s/.test(out.at(-1)!.text)) {
      out.at(-1)!.text += " " + text.trim();
      continue;
    } else {
      pending = { line, text };
    }
    if (pending.text.endsWith("\\")) {
      pending.text = pending.text.slice(0, -1).trimEnd();
    } else {
      out.push(pending);
      pending = undefined;
    }
  }
  if (pending) out.push(pending);
  return out;
}

/** Every fenced logical line and inline code span of a document. */
function codeOf(doc: Doc, { inline = true }: { inline?: boolean } = {}): CodeSpan[] {
  return [...doc.fences.flatMap(logicalLines), ...(inline ? doc.inline : [])];
}

/** A line without its shell comment (` # …`). */
const uncomment = (s: string): string => s.replace(/(^|\s)#\s.*$/, "").trimEnd();

/** Shell words, quotes removed ("a b" is one word). */
function shellWords(s: string): string[] {
  const words: string[] = [];
  for (const m of s.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** Long options (`--name`) used in a piece of command line. */
const longFlags = (s: string): string[] => [...s.matchAll(/(?:^|[\s[|])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);

const docFiles = (): string[] => [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

const docs = new Map(docFiles().map((f) => [f, parseDoc(f)]));
const doc = (file: string): Doc => {
  const d = docs.get(file);
  if (!d) throw new Error(`${file} does not exist`);
  return d;
};

/** Lists problems; the assertion shows them one a line. */
function expectNone(problems: string[]): void {
  expect(problems, `\n${problems.join("\n")}\n`).toEqual([]);
}

// ------------------------------------------------------------------ tests

describe("links", () => {
  it("every relative link and image in README.md and docs/*.md resolves, and an anchor into a page names one of its headings", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const d of docs.values()) {
      // Link syntax in inline code is an example, not a link.
      const text = d.prose.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (m) => m.replace(/[^\n]/g, " "));
      const targets: { line: number; target: string }[] = [];
      for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push({ line: lineAt(text, m.index), target: m[1]! });
      for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) targets.push({ line: lineAt(text, m.index), target: m[1]! });
      for (const m of text.matchAll(/<(?:img|a)\s[^>]*?(?:src|href)="([^"]+)"/g)) targets.push({ line: lineAt(text, m.index), target: m[1]! });
      for (const { line, target } of targets) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        checked++;
        const [path = "", anchor] = target.split("#", 2) as [string, string | undefined];
        const file = path === "" ? d.file : relative(ROOT, resolve(ROOT, path.startsWith("/") ? path.slice(1) : join(dirname(d.file), decodeURI(path.split("?")[0]!))));
        if (file.startsWith("..") || !existsSync(join(ROOT, file))) {
          problems.push(`${where(d, line)}: link "${target}" points to ${file}, which does not exist`);
          continue;
        }
        if (anchor && file.endsWith(".md")) {
          const target_ = docs.get(file) ?? parseDoc(file);
          if (!anchorsOf(target_).has(anchor)) problems.push(`${where(d, line)}: link "${target}": ${file} has no heading with the anchor #${anchor} (it has: ${[...anchorsOf(target_)].map((a) => `#${a}`).join(", ")})`);
        }
      }
    }
    expect(checked, "no relative links found: is the Markdown parser broken?").toBeGreaterThan(20);
    expectNone(problems);
  });

  it("every `bash <script>` a page tells you to run exists", () => {
    const problems: string[] = [];
    for (const d of docs.values()) {
      for (const c of codeOf(d)) {
        for (const m of uncomment(c.text).matchAll(/(?:^|[\s($])bash\s+([\w./-]+\.sh)\b/g)) {
          if (!existsSync(join(ROOT, m[1]!))) problems.push(`${where(d, c.line)}: \`bash ${m[1]}\`: ${m[1]} does not exist`);
        }
      }
    }
    expectNone(problems);
  });

  it("every repository path written as inline code exists", () => {
    // Names that look like repository paths and are not: the file names gRPC reflection serves.
    const NOT_PATHS = new Set(["deploy/v1/deploy.proto"]);
    const problems: string[] = [];
    const expand = (p: string): string[] => {
      const m = /\{([^{}]*)\}/.exec(p);
      return m ? m[1]!.split(",").flatMap((alt) => expand(p.slice(0, m.index) + alt + p.slice(m.index + m[0].length))) : [p];
    };
    for (const d of docs.values()) {
      for (const c of d.inline) {
        if (!/^(?:services|scripts|test|deploy|proto|docs|bench|dist)\/[\w./{},-]*$/.test(c.text) || NOT_PATHS.has(c.text)) continue;
        for (const p of expand(c.text)) {
          if (!existsSync(join(ROOT, p))) problems.push(`${where(d, c.line)}: \`${c.text}\`: ${p} does not exist`);
        }
      }
    }
    expectNone(problems);
  });
});

describe("npm scripts", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };

  it("every `npm run <script>` mentioned exists in package.json, and every --flag after `--` is an option of that script", () => {
    const problems: string[] = [];
    let seen = 0;
    for (const d of docs.values()) {
      for (const m of d.text.matchAll(/\bnpm\s+run\s+([a-z][\w:-]*)/g)) {
        seen++;
        if (!(m[1]! in pkg.scripts)) problems.push(`${where(d, lineAt(d.text, m.index))}: \`npm run ${m[1]}\`: package.json has no script "${m[1]}" (it has: ${Object.keys(pkg.scripts).join(", ")})`);
      }
      for (const c of codeOf(d)) {
        for (const m of uncomment(c.text).matchAll(/\bnpm\s+run\s+([a-z][\w:-]*)\s+--\s+(.*)$/g)) {
          const [, name, rest] = m as unknown as [string, string, string];
          const args = rest.split(/\s(?:&&|\|\||;|\|)\s/)[0]!;
          const script = pkg.scripts[name];
          const entry = script && /\bnode\s+dist\/(scripts\/[\w-]+)\.js\b/.exec(script);
          if (!entry) continue; // no script file of ours to check the options against
          const sourceFile = `${entry[1]}.ts`;
          const source = readFileSync(join(ROOT, sourceFile), "utf8");
          for (const flag of longFlags(args)) {
            const name_ = flag.slice(2);
            const esc = name_.replace(/[-]/g, "\\-");
            const known = new RegExp(`(^|[\\s{,])(["']?)${esc}\\2\\s*:\\s*\\{`, "m").test(source) || source.includes(`"${flag}"`);
            if (!known) problems.push(`${where(d, c.line)}: \`npm run ${name} -- … ${flag}\`: ${sourceFile} has no option ${flag}`);
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
    expectNone(problems);
  });
});

describe("deployctl", () => {
  const help = new Map<string, string>();
  const helpOf = (command?: string): string => {
    const key = command ?? "";
    if (!help.has(key)) {
      if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing: run \`npm run build\` first`);
      const r = spawnSync(process.execPath, [CLI, ...(command ? [command] : []), "--help"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", COLUMNS: "200" }, timeout: 30_000 });
      if (!r.stdout) throw new Error(`deployctl ${command ?? ""} --help printed nothing (exit ${r.status}): ${r.stderr}`);
      help.set(key, r.stdout);
    }
    return help.get(key)!;
  };
  const commands = (): string[] => {
    const section = /\nCommands:\n([\s\S]*?)(?:\n\S|\n\n|$)/.exec(helpOf())?.[1] ?? "";
    return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!);
  };
  const flagsOf = (command: string): Set<string> => new Set([...helpOf(command).matchAll(/^\s{2,}(?:-\w,\s+)?(--[a-z][\w-]*)/gm)].map((m) => m[1]!));

  it("the built CLI lists its commands", () => {
    expect(commands()).toEqual(expect.arrayContaining(["deploy", "watch", "get", "list", "cancel", "agents", "artifacts", "completion"]));
  });

  it("every `deployctl <command> …` in the docs names a command and only options its --help lists", () => {
    const problems: string[] = [];
    const known = commands();
    // `deployctl <command> …`: the options every command that talks to a coordinator takes.
    const connecting = known.filter((c) => c !== "help" && flagsOf(c).has("--coordinator"));
    let seen = 0;
    for (const d of docs.values()) {
      for (const c of codeOf(d)) {
        const text = uncomment(c.text);
        for (const m of text.matchAll(/(?:^|[\s(;&|`$])deployctl\s+(<[^>]+>|[a-z][\w-]*)/g)) {
          seen++;
          const command = m[1]!;
          // This command's words: quoted strings masked, cut at a pipe into another program, &&, ;, a redirection or the end of $( … ).
          const rest = text
            .slice(m.index + m[0].length)
            .replace(/'[^']*'|"[^"]*"/g, "Q")
            .split(/\s(?:\|(?=\s+[a-z])|&&|;|>)\s|\)/)[0]!;
          const targets = command.startsWith("<") ? connecting : [command];
          if (!command.startsWith("<") && !known.includes(command)) {
            problems.push(`${where(d, c.line)}: \`deployctl ${command}\`: no such command (deployctl --help lists: ${known.join(", ")})`);
            continue;
          }
          for (const flag of longFlags(rest)) {
            const missing = targets.filter((t) => !flagsOf(t).has(flag));
            if (missing.length > 0) problems.push(`${where(d, c.line)}: \`deployctl ${command} … ${flag}\`: ${flag} is not an option of ${missing.map((t) => `deployctl ${t}`).join(", ")} (see --help)`);
          }
        }
      }
    }
    expect(seen, "no deployctl commands found in the docs").toBeGreaterThan(15);
    expectNone(problems);
  });
});

describe("nats CLI commands in docs/jetstream.md", () => {
  /** Options of the nats CLI that take a value: connection settings, left out when comparing. */
  const VALUE_OPTIONS = new Set(["--server", "-s", "--nkey", "--creds", "--tlsca", "--tlscert", "--tlskey", "--context", "--user", "--password"]);

  /** Subcommand words and names, without connection options, flags or placeholders (`<deployment_id>` and the test's variables: `*`). */
  function normalise(words: string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (VALUE_OPTIONS.has(w)) i++;
      else if (!w.startsWith("-")) out.push(w.replace(/<[^>]+>/g, "*"));
    }
    return out;
  }

  const glob = (pattern: string, s: string): boolean => new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\S*")}$`).test(s);
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((w, i) => w === b[i] || glob(w, b[i]!) || glob(b[i]!, w));

  /** What test/nats-cli.test.ts runs: every `nats([…])` / `natsInTerminal([…])` array, string literals kept, anything computed as `*`. */
  function testedCommands(): string[][] {
    const source = readFileSync(join(ROOT, "test/nats-cli.test.ts"), "utf8");
    return [...source.matchAll(/\bnats(?:InTerminal)?\(\s*\[([^\]]*)\]/g)].map((m) =>
      normalise(
        m[1]!
          .split(",")
          .map((e) => e.trim())
          .filter(Boolean)
          .map((e) => (/^"(.*)"$/.exec(e)?.[1] ?? /^`(.*)`$/.exec(e)?.[1]?.replace(/\$\{[^}]*\}/g, "*") ?? "*")),
      ),
    );
  }

  it("each one is a command test/nats-cli.test.ts runs", () => {
    const tested = testedCommands();
    expect(tested.length, "found no nats([…]) calls in test/nats-cli.test.ts").toBeGreaterThan(10);
    const d = doc("docs/jetstream.md");
    const problems: string[] = [];
    let seen = 0;
    for (const c of codeOf(d, { inline: false })) {
      const words = shellWords(uncomment(c.text).replace(/^\$\s+/, ""));
      if (words[0] !== "nats") continue;
      seen++;
      const wanted = normalise(words.slice(1));
      if (!tested.some((t) => same(wanted, t))) {
        problems.push(`${where(d, c.line)}: \`${c.text.trim()}\` is not run by test/nats-cli.test.ts (compared as "${wanted.join(" ")}"; it runs: ${[...new Set(tested.map((t) => `"${t.join(" ")}"`))].join(", ")})`);
      }
    }
    expect(seen, "docs/jetstream.md has no nats commands in a code block").toBeGreaterThan(5);
    expectNone(problems);
  });
});

describe("grpcurl and grpc-health-probe commands in docs/api.md", () => {
  /** grpcurl options that take a value. */
  const VALUE_OPTIONS = new Set(["-d", "-H", "-rpc-header", "-reflect-header", "-cacert", "-cert", "-key", "-max-time", "-connect-timeout", "-keepalive-time", "-authority", "-servername", "-import-path", "-proto", "-protoset", "-protoset-out", "-format", "-user-agent", "-max-msg-sz"]);

  function exercised(): { list: Set<string>; describe: Set<string>; methods: Set<string>; probeServices: Set<string>; probe: boolean } {
    const source = readFileSync(join(ROOT, "test/grpcurl.test.ts"), "utf8");
    const list = new Set<string>();
    const describe_ = new Set<string>();
    for (const m of source.matchAll(/\bgrpcurl\(\s*"(list|describe)"(?:\s*,\s*"([^"]+)")?\s*\)/g)) (m[1] === "list" ? list : describe_).add(m[2] ?? "");
    const methods = new Set([...source.matchAll(/\binvoke\(\s*"([^"]+)"/g)].map((m) => m[1]!));
    const probeServices = new Set([...source.matchAll(/"-service",\s*"([^"]+)"/g)].map((m) => m[1]!));
    return { list, describe: describe_, methods, probeServices, probe: /\brun\(\s*"grpc-health-probe"/.test(source) };
  }

  it("each one lists, describes or calls only what test/grpcurl.test.ts does", () => {
    const x = exercised();
    expect(x.methods.size, "found no invoke(…) calls in test/grpcurl.test.ts").toBeGreaterThan(2);
    const d = doc("docs/api.md");
    const problems: string[] = [];
    let seen = 0;
    for (const c of codeOf(d)) {
      const words = shellWords(uncomment(c.text).replace(/^\$\s+/, ""));
      if (words[0] === "grpcurl") {
        seen++;
        const positional: string[] = [];
        for (let i = 1; i < words.length; i++) {
          if (VALUE_OPTIONS.has(words[i]!)) i++;
          else if (!words[i]!.startsWith("-")) positional.push(words[i]!);
        }
        const [, verb = "", symbol = ""] = positional;
        const at = `${where(d, c.line)}: \`${c.text.trim()}\``;
        if (verb === "list" || verb === "describe") {
          if (!x[verb].has(symbol)) problems.push(`${at}: test/grpcurl.test.ts never runs \`grpcurl ${verb}${symbol ? ` ${symbol}` : ""}\` (it runs ${verb} with: ${[...x[verb]].map((s) => s || "(nothing)").join(", ")})`);
        } else {
          const method = verb.includes("/") ? verb : verb.replace(/\.([^.]+)$/, "/$1");
          if (!x.methods.has(method)) problems.push(`${at}: test/grpcurl.test.ts never calls ${method || "(no method)"} (it calls: ${[...x.methods].join(", ")})`);
        }
      } else if (words[0] === "grpc-health-probe") {
        seen++;
        const at = `${where(d, c.line)}: \`${c.text.trim()}\``;
        if (!x.probe) problems.push(`${at}: test/grpcurl.test.ts never runs grpc-health-probe`);
        const i = words.indexOf("-service");
        if (i >= 0 && !x.probeServices.has(words[i + 1] ?? "")) problems.push(`${at}: test/grpcurl.test.ts never probes -service ${words[i + 1]} (it probes: ${[...x.probeServices].join(", ")})`);
      }
    }
    expect(seen, "docs/api.md has no grpcurl commands").toBeGreaterThan(3);
    expectNone(problems);
  });
});

describe("docs/configuration.md", () => {
  interface Declared {
    name: string;
    file: string;
    line: number;
  }
  const CONFIGS = { coordinator: "services/coordinator/src/config.ts", agent: "services/agent/src/config.ts" } as const;

  /** Environment variables a config schema declares (`env: "…"`), and its config-file variable. */
  function declared(file: string): Declared[] {
    const source = readFileSync(join(ROOT, file), "utf8");
    return [...source.matchAll(/\benv:\s*"([A-Z][A-Z0-9_]*)"|configFileFrom\([^,]+,\s*"([A-Z][A-Z0-9_]*)"\)/g)].map((m) => ({ name: (m[1] ?? m[2])!, file, line: lineAt(source, m.index) }));
  }

  /** Names from services/shared/src/names.ts (stream names such as DEPLOY_EVENTS may be mentioned too). */
  function jetStreamNames(): Set<string> {
    const source = readFileSync(join(ROOT, "services/shared/src/names.ts"), "utf8");
    return new Set([...source.matchAll(/export const \w+ = "([A-Z][A-Z0-9_]*)"/g)].map((m) => m[1]!));
  }

  it("names exactly the environment variables the coordinator's and the agent's config declare, each under its process", () => {
    const d = doc("docs/configuration.md");
    const byProcess = { coordinator: declared(CONFIGS.coordinator), agent: declared(CONFIGS.agent) };
    expect(byProcess.coordinator.length).toBeGreaterThan(20);
    expect(byProcess.agent.length).toBeGreaterThan(15);
    const names = jetStreamNames();
    const problems: string[] = [];

    // The page's sections: "## Coordinator …" and "## Agent …"; text before them belongs to both.
    const lines = d.text.split("\n");
    const sectionOf = (line: number): "coordinator" | "agent" | undefined => {
      let s: "coordinator" | "agent" | undefined;
      for (let i = 0; i < line; i++) {
        const h = /^##\s+(\w+)/.exec(lines[i]!);
        if (h) s = h[1]!.toLowerCase() === "coordinator" ? "coordinator" : h[1]!.toLowerCase() === "agent" ? "agent" : undefined;
      }
      return s;
    };
    expect(lines.some((l) => /^##\s+Coordinator\b/.test(l)) && lines.some((l) => /^##\s+Agent\b/.test(l)), "docs/configuration.md needs a '## Coordinator' and an '## Agent' section").toBe(true);

    const mentioned = { coordinator: new Set<string>(), agent: new Set<string>() };
    for (const m of d.text.matchAll(/\b(?:DEPLOY|NATS)_[A-Z0-9_]*[A-Z0-9]\b|\bLOG_LEVEL\b/g)) {
      const name = m[0];
      const line = lineAt(d.text, m.index);
      const section = sectionOf(line);
      for (const p of section ? [section] : (["coordinator", "agent"] as const)) mentioned[p].add(name);
      if (!name.startsWith("DEPLOY_") && !name.startsWith("NATS_")) continue;
      const allowed = section ? byProcess[section] : [...byProcess.coordinator, ...byProcess.agent];
      if (allowed.some((v) => v.name === name) || names.has(name)) continue;
      const elsewhere = [...byProcess.coordinator, ...byProcess.agent].find((v) => v.name === name);
      problems.push(
        elsewhere
          ? `${where(d, line)}: ${name} is in the ${section} section, but it is declared in ${elsewhere.file}:${elsewhere.line}, not in ${CONFIGS[section!]}`
          : `${where(d, line)}: ${name} is not declared in ${CONFIGS.coordinator} or ${CONFIGS.agent} (no env: "${name}")`,
      );
    }
    for (const p of ["coordinator", "agent"] as const) {
      for (const v of byProcess[p]) {
        if (!mentioned[p].has(v.name)) problems.push(`${v.file}:${v.line}: ${v.name} is declared here but docs/configuration.md does not document it in its ${p} section`);
      }
    }
    expectNone(problems);
  });
});

describe("README.md is a front page", () => {
  it(`has at most ${README_MAX_LINES} lines`, () => {
    const n = doc("README.md").text.trimEnd().split("\n").length;
    expect(n, `README.md:${n}: ${n} lines; the front page keeps to ${README_MAX_LINES}: move the detail to a page in docs/`).toBeLessThanOrEqual(README_MAX_LINES);
  });

  for (const index of ["README.md", "docs/README.md"]) {
    it(`${index} links every docs/*.md page`, () => {
      const d = doc(index);
      const linked = new Set(
        [...d.prose.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>#]+)/g)].map((m) => relative(ROOT, resolve(ROOT, dirname(d.file), m[1]!))),
      );
      const pages = [...docs.keys()].filter((f) => f.startsWith("docs/") && f !== index);
      const missing = pages.filter((p) => !linked.has(p));
      expectNone(missing.map((p) => `${index}: does not link ${p} (add it to its list of pages)`));
    });
  }
});
