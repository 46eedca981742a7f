import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  appendNewKey,
  createKeyFile,
  decodeKey,
  deriveKeyId,
  Keyring,
  loadKeyring,
  parseKeyText,
} from "../../../src/store/keyring.ts";
import { cleanup, tempDir } from "./helpers.ts";

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const K3 = new Uint8Array(32).fill(3);
const b64 = (k: Uint8Array) => Buffer.from(k).toString("base64");
const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");

let dir: string;
afterEach(() => cleanup(dir));

describe("parseKeyText", () => {
  test("key-file lines: comments and blanks ignored, last line is current", () => {
    const keys = parseKeyText(`# header\n\naaaa1111 ${b64(K1)}\nbbbb2222 ${b64(K2)}\n`, "test");
    expect(keys).toEqual([
      { id: "aaaa1111", key: K1 },
      { id: "bbbb2222", key: K2 },
    ]);
    expect(new Keyring(keys, { kind: "env" }).current.id).toBe("bbbb2222");
  });

  test.each([
    ["base64", b64(K1)],
    ["base64url", Buffer.from(K1).toString("base64url")],
    ["hex", hex(K1)],
    ["hex with newline", hex(K1) + "\n"],
  ])("a bare key (%s) gets an ID derived from the key", (_name, text) => {
    expect(parseKeyText(text, "test")).toEqual([{ id: deriveKeyId(K1), key: K1 }]);
  });

  test("derived IDs are 8 hex digits and differ per key", () => {
    expect(deriveKeyId(K1)).toMatch(/^[0-9a-f]{8}$/);
    expect(deriveKeyId(K1)).not.toBe(deriveKeyId(K2));
  });

  test.each([
    ["empty", ""],
    ["short key", Buffer.alloc(16).toString("base64")],
    ["bad line", `aaaa1111 ${b64(K1)}\nnot a key line`],
    ["upper-case ID", `AAAA1111 ${b64(K1)}`],
    ["duplicate ID", `aaaa1111 ${b64(K1)}\naaaa1111 ${b64(K2)}`],
    ["33-byte key", `aaaa1111 ${Buffer.alloc(33, 7).toString("base64")}`],
  ])("malformed (%s) throws TypeError without echoing key material", (_name, text) => {
    let message = "";
    try {
      parseKeyText(text, "key file /x");
    } catch (err) {
      expect(err).toBeInstanceOf(TypeError);
      message = (err as Error).message;
    }
    expect(message).toContain("key file /x");
    expect(message).not.toContain(b64(K1));
    expect(message).not.toContain(b64(K2));
  });

  test("decodeKey rejects anything but 32 bytes", () => {
    expect(decodeKey(hex(K1))).toEqual(K1);
    expect(decodeKey("zz")).toBeUndefined();
    expect(decodeKey(Buffer.alloc(31).toString("base64"))).toBeUndefined();
  });
});

describe("loadKeyring precedence: credential, then environment, then key file", () => {
  function setup() {
    dir = tempDir();
    const credDir = path.join(dir, "creds");
    fs.mkdirSync(credDir);
    fs.writeFileSync(path.join(credDir, "portcullis.key"), `cccc0001 ${b64(K1)}\n`);
    const keyFile = path.join(dir, "portcullis.key");
    fs.writeFileSync(keyFile, `ffff0003 ${b64(K3)}\n`);
    return { credDir, keyFile };
  }

  test.each([
    ["credential wins over env and file", true, true, "credential", "cccc0001"],
    ["env wins over file", false, true, "env", deriveKeyId(K2)],
    ["file when nothing else", false, false, "file", "ffff0003"],
  ])("%s", (_name, withCred, withEnv, kind, id) => {
    const { credDir, keyFile } = setup();
    const env: Record<string, string> = {};
    if (withCred) env.CREDENTIALS_DIRECTORY = credDir;
    if (withEnv) env.PORTCULLIS_KEY = hex(K2);
    const keyring = loadKeyring({ keyFile, env })!;
    expect(keyring.source.kind).toBe(kind as "credential" | "env" | "file");
    expect(keyring.current.id).toBe(id);
  });

  test("a credentials directory without our credential falls through", () => {
    const { keyFile } = setup();
    const empty = path.join(dir, "empty");
    fs.mkdirSync(empty);
    expect(loadKeyring({ keyFile, env: { CREDENTIALS_DIRECTORY: empty } })!.source.kind).toBe("file");
  });

  test("nothing found → undefined", () => {
    dir = tempDir();
    expect(loadKeyring({ keyFile: path.join(dir, "none"), env: { PORTCULLIS_KEY: "" } })).toBeUndefined();
  });
});

describe("key file creation and rotation", () => {
  test("createKeyFile: O_EXCL, mode 0600, one fresh key; never overwrites", () => {
    dir = tempDir();
    const keyFile = path.join(dir, "portcullis.key");
    const keyring = createKeyFile(keyFile);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(keyring.current.id).toMatch(/^[0-9a-f]{8}$/);
    expect(keyring.current.key.length).toBe(32);
    expect(loadKeyring({ keyFile, env: {} })!.current).toEqual(keyring.current);
    const before = fs.readFileSync(keyFile, "utf8");
    expect(() => createKeyFile(keyFile)).toThrow(expect.objectContaining({ code: "EEXIST" }));
    expect(fs.readFileSync(keyFile, "utf8")).toBe(before);
  });

  test("appendNewKey keeps older keys, makes the new one current, keeps 0600", () => {
    dir = tempDir();
    const keyFile = path.join(dir, "portcullis.key");
    const keyring = createKeyFile(keyFile);
    const first = keyring.current;
    const added = appendNewKey(keyring);
    expect(added.id).not.toBe(first.id);
    expect(keyring.current).toEqual(added);
    expect(keyring.get(first.id)).toEqual(first.key);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const reloaded = loadKeyring({ keyFile, env: {} })!;
    expect(reloaded.ids()).toEqual([first.id, added.id]);
  });

  test("reload sees a key another process appended", () => {
    dir = tempDir();
    const keyFile = path.join(dir, "portcullis.key");
    const mine = createKeyFile(keyFile);
    const theirs = loadKeyring({ keyFile, env: {} })!;
    const added = appendNewKey(theirs);
    expect(mine.get(added.id)).toBeUndefined();
    expect(mine.reload()).toBe(true);
    expect(mine.current.id).toBe(added.id);
    expect(mine.reload()).toBe(false);
  });

  test("appendNewKey refuses an environment keyring", () => {
    const keyring = new Keyring([{ id: "aaaa", key: K1 }], { kind: "env" });
    expect(() => appendNewKey(keyring)).toThrow(TypeError);
  });
});
