import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../services/shared/src/errors.js";
import { BundleState, checkEntry, inspectBundle } from "../services/shared/src/bundle/inspect.js";
import { unpackBundle } from "../services/agent/src/bundle/unpack.js";
import { makeBundle, script, writeBundle, type BundleEntry } from "./helpers/bundles.js";

const MANIFEST = `version: 1\nhooks:\n  start: { run: hooks/start.sh, timeout: 30s }\nkeep_releases: 3\n`;
const good = (): BundleEntry[] => [
  { name: "deploy.yaml", content: MANIFEST },
  { name: "hooks/", type: "directory" },
  { name: "hooks/start.sh", content: script("echo start"), mode: 0o755 },
  { name: "app/", type: "directory" },
  { name: "app/main.txt", content: "hello" },
  { name: "app/link", type: "symlink", target: "main.txt" },
  { name: "app/up", type: "symlink", target: "../hooks/start.sh" },
];

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "bundle-inspect-"));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function inspect(buf: Buffer, ratio = 100) {
  return inspectBundle(Readable.from([buf]), { maxExpansionRatio: ratio, compressedSize: buf.length });
}

/** Refused by inspect, and by unpack, which leaves nothing behind. */
async function expectRefused(entries: BundleEntry[], field: string | RegExp, problem: RegExp, ratio = 100): Promise<void> {
  const buf = await makeBundle(entries);
  const err = await inspect(buf, ratio).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  const v = err as ValidationError;
  if (typeof field === "string") expect(v.field).toBe(field);
  else expect(v.field).toMatch(field);
  expect(v.message).toMatch(problem);

  const file = path.join(tmp, "b.tar.gz");
  await fs.writeFile(file, buf);
  const dest = path.join(tmp, "out", "release");
  await expect(unpackBundle(file, dest, { maxExpansionRatio: ratio })).rejects.toThrow(problem);
  await expect(fs.readdir(path.join(tmp, "out"))).resolves.toEqual([]);
}

describe("inspectBundle", () => {
  it("accepts a good bundle and lists its regular files", async () => {
    const info = await inspect(await makeBundle(good()));
    expect(info.manifest).toMatchObject({ version: 1, keepReleases: 3, hooks: { start: { run: "hooks/start.sh", timeoutMs: 30_000 } } });
    expect(info.files).toEqual(["deploy.yaml", "hooks/start.sh", "app/main.txt"]);
    expect(info.totalBytes).toBeGreaterThan(0);
  });

  it("accepts ./-prefixed names as `tar -C dir .` writes them, and an async iterable without a size", async () => {
    const buf = await makeBundle([{ name: "./", type: "directory" }, ...good().map((e) => ({ ...e, name: `./${e.name}` }))]);
    async function* chunks() {
      for (let i = 0; i < buf.length; i += 7) yield await Promise.resolve(buf.subarray(i, i + 7));
    }
    const info = await inspectBundle(chunks(), { maxExpansionRatio: 100 });
    expect(info.files).toContain("hooks/start.sh");
  });

  it("refuses data that is not gzip", async () => {
    await expect(inspect(Buffer.from("hello, this is not gzip"))).rejects.toThrow(/bundle: is not gzip data/);
  });

  it("refuses gzip that is not a tar", async () => {
    await expect(inspect(zlib.gzipSync(Buffer.alloc(2048, "x")))).rejects.toThrow(/bundle: is not a valid tar archive/);
  });

  it("refuses truncated gzip", async () => {
    const buf = await makeBundle(good());
    await expect(inspect(buf.subarray(0, buf.length - 20))).rejects.toThrow(/bundle: gzip data is truncated|bundle: is not a valid tar/);
  });

  it("refuses a path with ..", async () => {
    await expectRefused([...good(), { name: "../x", content: "x" }], "bundle: ../x", /".." path components are not allowed/);
    await expectRefused([...good(), { name: "app/../../x", content: "x" }], "bundle: app/../../x", /".."/);
  });

  it("refuses an absolute path", async () => {
    await expectRefused([...good(), { name: "/etc/x", content: "x" }], "bundle: /etc/x", /absolute paths are not allowed/);
  });

  it("refuses a symlink escaping the bundle", async () => {
    await expectRefused([...good(), { name: "app/link2", type: "symlink", target: "../../etc" }], "bundle: app/link2", /points outside the bundle/);
  });

  it("refuses an escape through a chain of links", async () => {
    // d/s -> .. is the root; l -> d/s/.. looks inside lexically but is the root's parent.
    await expectRefused(
      [...good(), { name: "d/s", type: "symlink", target: ".." }, { name: "l", type: "symlink", target: "d/s/.." }],
      "bundle: l",
      /outside the bundle/,
    );
  });

  it("refuses an absolute symlink", async () => {
    await expectRefused([...good(), { name: "etc", type: "symlink", target: "/etc" }], "bundle: etc", /is absolute/);
  });

  it("refuses writing through a symlink", async () => {
    await expectRefused([...good(), { name: "d", type: "symlink", target: "app" }, { name: "d/x", content: "x" }], "bundle: d/x", /which is a symlink/);
  });

  it("refuses a hard link", async () => {
    await expectRefused([...good(), { name: "hard", type: "link", target: "deploy.yaml" }], "bundle: hard", /hard links are not allowed/);
  });

  it("refuses a character device", async () => {
    await expectRefused([...good(), { name: "null", type: "character-device" }], "bundle: null", /device files are not allowed/);
  });

  it("refuses a block device", async () => {
    await expectRefused([...good(), { name: "sda", type: "block-device" }], "bundle: sda", /device files are not allowed/);
  });

  it("refuses a fifo", async () => {
    await expectRefused([...good(), { name: "pipe", type: "fifo" }], "bundle: pipe", /fifos are not allowed/);
  });

  it("refuses a duplicate entry", async () => {
    await expectRefused([...good(), { name: "app/main.txt", content: "again" }], "bundle: app/main.txt", /appears twice/);
  });

  it("refuses an expansion far larger than the compressed size, early", async () => {
    const buf = await makeBundle([...good(), { name: "zeros.bin", type: "zeros", size: 50 * 1024 * 1024 }]);
    expect(buf.length).toBeLessThan(200 * 1024);
    await expect(inspect(buf, 20)).rejects.toThrow(/bundle: expands to more than 20 times its compressed size/);
    // Without a known size the ratio is still checked, at the end.
    await expect(inspectBundle(Readable.from([buf]), { maxExpansionRatio: 20 })).rejects.toThrow(/expands to more than 20 times/);
    await expectRefused([...good(), { name: "zeros.bin", type: "zeros", size: 50 * 1024 * 1024 }], "bundle", /expands to more than 20 times/, 20);
  });

  it("refuses more entries than allowed", async () => {
    const many: BundleEntry[] = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, content: "" }));
    const buf = await makeBundle([...good(), ...many]);
    await expect(inspectBundle(Readable.from([buf]), { maxExpansionRatio: 100, maxEntries: 10 })).rejects.toThrow(/bundle: has more than 10 entries/);
  });

  it("refuses a bundle without deploy.yaml at its root", async () => {
    await expectRefused(
      good().map((e) => (e.name === "deploy.yaml" ? { ...e, name: "sub/deploy.yaml" } : e)),
      "deploy.yaml",
      /is missing from the bundle root/,
    );
  });

  it("refuses an unknown manifest key", async () => {
    await expectRefused([{ name: "deploy.yaml", content: "version: 1\nhookz: {}\n" }], "hookz", /unknown key/);
  });

  it("refuses a hook whose script is missing", async () => {
    await expectRefused(
      [{ name: "deploy.yaml", content: "version: 1\nhooks:\n  validate: { run: hooks/nope.sh }\n" }],
      "hooks.validate.run",
      /"hooks\/nope.sh" is not a regular file/,
    );
  });

  it("refuses a hook whose script is a symlink", async () => {
    await expectRefused(
      [
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh }\n" },
        { name: "real.sh", content: script("true"), mode: 0o755 },
        { name: "s.sh", type: "symlink", target: "real.sh" },
      ],
      "hooks.start.run",
      /not a regular file/,
    );
  });

  it("refuses a bad duration", async () => {
    await expectRefused(
      [
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh, timeout: soon }\n" },
        { name: "s.sh", content: script("true"), mode: 0o755 },
      ],
      "hooks.start.timeout",
      /"soon" is not a duration/,
    );
  });

  it("refuses a hook script that is not executable", async () => {
    await expectRefused(
      [
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh }\n" },
        { name: "s.sh", content: script("true"), mode: 0o644 },
      ],
      "hooks.start.run",
      /is not executable \(mode 0644\)/,
    );
  });

  it("refuses a hook script saved with Windows line endings", async () => {
    await expectRefused(
      [
        { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: s.sh }\n" },
        { name: "s.sh", content: "#!/usr/bin/env bash\r\ntrue\r\n", mode: 0o755 },
      ],
      "hooks.start.run",
      /script "s.sh" has Windows line endings \(CRLF\): its first line "#!\/usr\/bin\/env bash\\r" names an interpreter that does not exist on the VM; convert it/,
    );
  });

  it("refuses a deploy.yaml over 64 KB", async () => {
    // Incompressible: one repeated character would reach the agent's streaming
    // expansion check first (it gunzips 256 KiB at a time: unpack.ts).
    await expectRefused([{ name: "deploy.yaml", content: `version: 1\n# ${randomBytes(52_500).toString("base64")}\n` }], "bundle: deploy.yaml", /larger than 65536 bytes/);
  });
});

describe("unpackBundle", () => {
  it("creates files with their modes, directories and relative links", async () => {
    const file = await writeBundle(tmp, [...good(), { name: "suid", content: "x", mode: 0o4755 }]);
    const dest = path.join(tmp, "rel");
    const info = await unpackBundle(file, dest, { maxExpansionRatio: 100 });
    expect(info.manifest.keepReleases).toBe(3);
    expect(await fs.readFile(path.join(dest, "app/main.txt"), "utf8")).toBe("hello");
    expect(await fs.readFile(path.join(dest, "app/link"), "utf8")).toBe("hello");
    expect(await fs.readlink(path.join(dest, "app/up"))).toBe("../hooks/start.sh");
    expect((await fs.stat(path.join(dest, "hooks/start.sh"))).mode & 0o7777).toBe(0o755);
    expect((await fs.stat(path.join(dest, "app/main.txt"))).mode & 0o7777).toBe(0o644);
    expect((await fs.stat(path.join(dest, "suid"))).mode & 0o7777).toBe(0o755);
  });

  it("refuses a destination that exists", async () => {
    const file = await writeBundle(tmp, good());
    await fs.mkdir(path.join(tmp, "exists"));
    await expect(unpackBundle(file, path.join(tmp, "exists"), { maxExpansionRatio: 100 })).rejects.toThrow(/EEXIST/);
  });
});

describe("checkEntry", () => {
  it("refuses an entry whose type flag tar-stream does not know", () => {
    expect(() => checkEntry({ name: "sparse", type: null, size: 0, mode: 0o644 }, new BundleState(10))).toThrow(/bundle: sparse: unsupported entry type unknown/);
  });
});
