// The sealed server secret (server_secrets): created once, shared by every connection, sealed with
// the store key and bound to its row, re-sealed by key rotation, replaced when its key is lost.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { Database } from "bun:sqlite";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { StoreError } from "../../../../src/store/types.ts";
import { cleanup, openIn, tempDir } from "../helpers.ts";

let dir: string;
const opened: SqliteStore[] = [];
beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  cleanup(dir);
});

async function open(): Promise<SqliteStore> {
  const s = await openIn(dir);
  opened.push(s);
  return s;
}

const raw = () => new Database(path.join(dir, "portcullis.db"));
const storedValue = () => {
  const db = raw();
  try {
    return (db.prepare("SELECT value FROM server_secrets WHERE name = 'magiclink'").get() as { value: string } | null)?.value;
  } finally {
    db.close();
  }
};

describe("server secret", () => {
  test("created on first use, then the same for every connection; only sealed text is stored", async () => {
    const made = new Uint8Array(randomBytes(32));
    const a = await open();
    const b = await open();
    let calls = 0;
    const create = () => {
      calls++;
      return made;
    };
    const [x, y] = await Promise.all([a.approvals.serverSecret(create), b.approvals.serverSecret(create)]);
    expect(Buffer.from(x).equals(Buffer.from(made))).toBe(true);
    expect(Buffer.from(y).equals(Buffer.from(made))).toBe(true);
    expect(calls).toBe(1);
    const stored = storedValue()!;
    expect(stored).toMatch(/^v1\.[0-9a-f]+\./);
    expect(stored).not.toContain(Buffer.from(made).toString("base64url"));
    expect(stored).not.toContain(Buffer.from(made).toString("hex"));
  });

  test.each([16, 31])("a %p-byte secret is refused", async (n) => {
    const s = await open();
    await expect(s.approvals.serverSecret(() => new Uint8Array(n))).rejects.toThrow(TypeError);
    expect(storedValue()).toBeUndefined();
  });

  test("a tampered value is corrupt, not silently replaced", async () => {
    const s = await open();
    await s.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
    const v = storedValue()!;
    const db = raw();
    db.prepare("UPDATE server_secrets SET value = ?").run(v.slice(0, -2) + (v.endsWith("A") ? "BB" : "AA"));
    db.close();
    const fresh = await open();
    const err = await fresh.approvals.serverSecret(() => new Uint8Array(randomBytes(32))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("corrupt");
  });

  test("key rotation re-seals it under the new key and it stays the same", async () => {
    const s = await open();
    const before = await s.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
    const keyId = storedValue()!.split(".")[1];
    const rotation = await s.rotateKey!();
    expect(storedValue()!.split(".")[1]).toBe(rotation.keyId);
    expect(rotation.keyId).not.toBe(keyId);
    const after = await (await open()).approvals.serverSecret(() => new Uint8Array(32).fill(7));
    expect(Buffer.from(after).equals(Buffer.from(before))).toBe(true);
  });

  test("sealed under a key that was lost: the store refuses to make a new key while the secret exists", async () => {
    const s = await open();
    await s.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
    await s.close();
    opened.splice(0);
    // No clients or tokens are sealed, but the server secret is: no new key is made silently.
    fs.rmSync(path.join(dir, "portcullis.key"));
    await expect(open()).rejects.toMatchObject({ code: "key_missing" });
    expect(fs.existsSync(path.join(dir, "portcullis.key"))).toBe(false);
  });
});
