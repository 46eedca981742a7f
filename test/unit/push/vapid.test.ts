// The VAPID key pair: made once, sealed in the store's server secrets, the same for every process and
// after a restart, re-sealed by `key rotate` (the old key can then go), and valid P-256.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createECDH } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { effectivePushSubject, loadVapidKeys, VAPID_SECRET_NAME } from "../../../src/push/vapid.ts";
import { sealedKeyId } from "../../../src/store/seal.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

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

function stored(): string {
  const db = new Database(path.join(dir, "portcullis.db"));
  try {
    return (db.prepare("SELECT value FROM server_secrets WHERE name = ?").get(VAPID_SECRET_NAME) as { value: string }).value;
  } finally {
    db.close();
  }
}

describe("VAPID keys", () => {
  test("one pair for every connection, kept sealed (never the scalar in the clear), a valid P-256 pair", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const [x, y] = await Promise.all([loadVapidKeys(a.serverSecrets), loadVapidKeys(b.serverSecrets)]);
    expect(y).toEqual(x);
    expect(Buffer.from(x.publicKey, "base64url").length).toBe(65);
    expect(Buffer.from(x.privateKey, "base64url").length).toBe(32);
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(Buffer.from(x.privateKey, "base64url"));
    expect(ecdh.getPublicKey("base64url")).toBe(x.publicKey);
    expect(stored()).toMatch(/^v1\.[0-9a-f]+\./);
    expect(stored()).not.toContain(x.privateKey);
  });

  test("the same after a restart", async () => {
    const first = await loadVapidKeys((await open()).serverSecrets);
    for (const s of opened.splice(0)) await s.close();
    expect(await loadVapidKeys((await open()).serverSecrets)).toEqual(first);
  });

  test("key rotation re-seals it under the new key: with the old key gone from the key file, the pair is unchanged", async () => {
    const s = await open();
    const before = await loadVapidKeys(s.serverSecrets);
    const oldKeyId = sealedKeyId(stored());
    const { keyId } = await s.rotateKey();
    expect(keyId).not.toBe(oldKeyId);
    expect(sealedKeyId(stored())).toBe(keyId);
    for (const x of opened.splice(0)) await x.close();
    // Only the new key is left: a value still sealed under the old one would be lost (and replaced).
    const keyFile = path.join(dir, "portcullis.key");
    const lines = fs.readFileSync(keyFile, "utf8").split("\n").filter((l) => /^[0-9a-f]+ /.test(l));
    fs.writeFileSync(keyFile, `${lines.at(-1)}\n`, { mode: 0o600 });
    expect(await loadVapidKeys((await open()).serverSecrets)).toEqual(before);
  });
});

describe("effectivePushSubject", () => {
  test.each([
    ["mailto:ops@example.com", "https://mfa.example.com", "mailto:ops@example.com"],
    ["", "https://mfa.example.com/base/", "https://mfa.example.com"],
    ["", "http://mfa.example.com", ""],
    ["", "https://localhost:8443", ""],
    ["", "", ""],
  ])("subject %p with public_url %p → %p", (subject, publicUrl, expected) => {
    expect(effectivePushSubject(subject, publicUrl)).toBe(expected);
  });
});
