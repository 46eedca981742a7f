import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { chownToDirectoryOwner, createExclusive, ensurePrivateDirectory, replaceAtomically } from "../../../src/runtime/files.ts";
import { cleanup, tempDir } from "../store/helpers.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
let dir: string;
afterEach(() => cleanup(dir));

describe("files", () => {
  test("createExclusive writes mode 0600 even under a permissive umask, and never overwrites", () => {
    dir = tempDir();
    const file = path.join(dir, "k");
    const old = process.umask(0);
    try {
      createExclusive(file, "one");
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(() => createExclusive(file, "two")).toThrow(expect.objectContaining({ code: "EEXIST" }));
    expect(fs.readFileSync(file, "utf8")).toBe("one");
  });

  test("replaceAtomically replaces content, keeps 0600 and leaves no temporary file", () => {
    dir = tempDir();
    const file = path.join(dir, "k");
    createExclusive(file, "one");
    replaceAtomically(file, "two");
    expect(fs.readFileSync(file, "utf8")).toBe("two");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(["k"]);
  });

  test("ensurePrivateDirectory creates missing parents with mode 0700", () => {
    dir = tempDir();
    const sub = path.join(dir, "a", "b");
    ensurePrivateDirectory(sub);
    expect(fs.statSync(sub).mode & 0o777).toBe(0o700);
    ensurePrivateDirectory(sub); // idempotent
  });

  test.skipIf(!isRoot)("as root, files are handed to the owner of the directory", () => {
    dir = tempDir();
    fs.chownSync(dir, 4242, 4343);
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    fs.writeFileSync(a, "");
    fs.writeFileSync(b, "");
    expect(chownToDirectoryOwner(dir, [a, b, path.join(dir, "missing")])).toBe(2);
    for (const f of [a, b]) expect([fs.statSync(f).uid, fs.statSync(f).gid]).toEqual([4242, 4343]);
    expect(chownToDirectoryOwner(dir, [a])).toBe(0);
  });

  test.skipIf(!isRoot)("as root, a root-owned directory changes nothing", () => {
    dir = tempDir();
    const a = path.join(dir, "a");
    fs.writeFileSync(a, "");
    expect(chownToDirectoryOwner(dir, [a])).toBe(0);
    expect(fs.statSync(a).uid).toBe(0);
  });
});
