#!/usr/bin/env node
// Generates TypeScript types for proto/deploy/v1/deploy.proto into
// services/shared/src/gen with @grpc/proto-loader's proto-loader-gen-types.
// `--check` regenerates into a temp dir and fails when the committed types
// differ, so the proto and the types can never drift apart unnoticed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const outDir = join(root, "services/shared/src/gen");
const check = process.argv.includes("--check");
const target = check ? mkdtempSync(join(tmpdir(), "proto-gen-")) : outDir;

// Options must match PROTO_LOADER_OPTIONS in services/shared/src/proto.ts.
execFileSync(
  join(root, "node_modules/.bin/proto-loader-gen-types"),
  ["--longs=String", "--enums=String", "--oneofs", "--grpcLib=@grpc/grpc-js", "-I", join(root, "proto"), "-O", target, "deploy/v1/deploy.proto"],
  { stdio: "inherit" },
);

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// NodeNext resolution wants explicit extensions on relative imports.
for (const file of walk(target)) {
  // The "Original file" comment holds an absolute path: make it relative so
  // the output is the same in every checkout.
  const text = readFileSync(file, "utf8")
    .replace(/from '(\.{1,2}\/[^']+)'/g, (_m, p) => `from '${p}.js'`)
    .replaceAll(root, "");
  writeFileSync(file, text);
}

if (check) {
  const want = walk(target).map((f) => relative(target, f)).sort();
  const have = existsSync(outDir) ? walk(outDir).map((f) => relative(outDir, f)).sort() : [];
  const stale = want.filter((f) => !have.includes(f) || readFileSync(join(target, f), "utf8") !== readFileSync(join(outDir, f), "utf8"));
  const extra = have.filter((f) => !want.includes(f));
  rmSync(target, { recursive: true, force: true });
  if (stale.length || extra.length) {
    console.error(`generated proto types are out of date (${[...stale, ...extra].join(", ")}): run npm run proto:gen`);
    process.exit(1);
  }
  console.log("proto types are up to date");
}
