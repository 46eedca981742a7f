import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { openDatabase } from "../../../../src/runtime/sqlite.ts";
import { deriveKeyId } from "../../../../src/store/keyring.ts";
import { openStore, rotateKey } from "../../../../src/store/open.ts";
import { cleanup, newClient, newToken, newUser, openIn, tempDir, storeError } from "../helpers.ts";

let dir: string;
afterEach(() => cleanup(dir));

const keyFileOf = (d: string) => path.join(d, "portcullis.key");
const dbOf = (d: string) => path.join(d, "portcullis.db");

/** A store holding one client and two tokens, closed again. */
async function seeded(env: Record<string, string> = {}): Promise<void> {
  const s = await openIn(dir, { env });
  const u = await s.users.add(newUser("alice"));
  await s.clients.add(newClient("vpn"));
  await s.tokens.add(newToken("T1", { userId: u.id }));
  await s.tokens.add(newToken("T2", { userId: u.id }));
  await s.close();
}

function rawExec(sql: string, ...params: string[]): void {
  const db = openDatabase(dbOf(dir));
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

describe("key file creation", () => {
  test("first open creates the data directory (0700) and a 0600 key file", async () => {
    dir = tempDir();
    const dataDir = path.join(dir, "data");
    const s = await openStore({ driver: "sqlite", path: path.join(dataDir, "portcullis.db"), dataDir, env: {} });
    await s.close();
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(keyFileOf(dataDir)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(keyFileOf(dataDir), "utf8")).toMatch(/^[0-9a-f]{8} [A-Za-z0-9+/]{43}=$/m);
  });

  test("a configured keyFile path is used", async () => {
    dir = tempDir();
    const keyFile = path.join(dir, "elsewhere.key");
    await (await openIn(dir, { keyFile })).close();
    expect(fs.existsSync(keyFile)).toBe(true);
    expect(fs.existsSync(keyFileOf(dir))).toBe(false);
  });

  test("reopening reuses the key file", async () => {
    dir = tempDir();
    await seeded();
    const before = fs.readFileSync(keyFileOf(dir), "utf8");
    const s = await openIn(dir);
    expect((await s.clients.findByName("vpn"))!.secret).toBe(newClient("vpn").secret);
    await s.close();
    expect(fs.readFileSync(keyFileOf(dir), "utf8")).toBe(before);
  });

  test("with the key gone and sealed secrets present: key_missing, and no new key is made", async () => {
    dir = tempDir();
    await seeded();
    fs.rmSync(keyFileOf(dir));
    const err = await storeError(openIn(dir));
    expect(err.code).toBe("key_missing");
    expect(err.message).toContain("refusing to create a new one while 3 sealed secrets exist");
    expect(fs.existsSync(keyFileOf(dir))).toBe(false);
  });

  test("with the key gone but no sealed secrets: a new key is made", async () => {
    dir = tempDir();
    const s = await openIn(dir);
    await s.users.add(newUser("alice"));
    await s.close();
    fs.rmSync(keyFileOf(dir));
    await (await openIn(dir)).close();
    expect(fs.existsSync(keyFileOf(dir))).toBe(true);
  });
});

describe("wrong keys", () => {
  test("a different key under the same ID: key_mismatch at open", async () => {
    dir = tempDir();
    await seeded();
    const [id] = fs.readFileSync(keyFileOf(dir), "utf8").trim().split("\n").at(-1)!.split(" ");
    fs.writeFileSync(keyFileOf(dir), `${id} ${Buffer.alloc(32, 7).toString("base64")}\n`);
    const err = await storeError(openIn(dir));
    expect(err.code).toBe("key_mismatch");
    expect(err.message).not.toContain(Buffer.alloc(32, 7).toString("base64"));
  });

  test("a key file that lacks the key the secrets use: key_mismatch", async () => {
    dir = tempDir();
    await seeded();
    fs.writeFileSync(keyFileOf(dir), `abcdef01 ${Buffer.alloc(32, 7).toString("base64")}\n`);
    const err = await storeError(openIn(dir));
    expect(err.code).toBe("key_mismatch");
    expect(err.message).toContain("3 sealed secrets use key ID");
  });

  test("a malformed key file is a TypeError naming the file", async () => {
    dir = tempDir();
    fs.writeFileSync(keyFileOf(dir), "not a key\n");
    await expect(openIn(dir)).rejects.toThrow(new TypeError(`key file ${keyFileOf(dir)} line 1 is malformed: expected '<keyId> <base64 32-byte key>'`));
  });
});

describe("environment and credential keys", () => {
  const envKey = Buffer.alloc(32, 0x42).toString("hex");

  test("$PORTCULLIS_KEY is used and no key file is written", async () => {
    dir = tempDir();
    await seeded({ PORTCULLIS_KEY: envKey });
    expect(fs.existsSync(keyFileOf(dir))).toBe(false);
    const s = await openIn(dir, { env: { PORTCULLIS_KEY: envKey } });
    expect((await s.tokens.findBySerial("T1"))!.secret).toEqual(newToken("T1").secret);
    expect(s.keyring.current.id).toBe(deriveKeyId(Buffer.alloc(32, 0x42)));
    await s.close();
    // Without the variable the secrets cannot be opened, and no file key is invented.
    expect((await storeError(openIn(dir))).code).toBe("key_missing");
  });

  test("the systemd credential wins over $PORTCULLIS_KEY", async () => {
    dir = tempDir();
    const credDir = path.join(dir, "creds");
    fs.mkdirSync(credDir);
    fs.writeFileSync(path.join(credDir, "portcullis.key"), Buffer.alloc(32, 0x43).toString("base64"));
    const env = { CREDENTIALS_DIRECTORY: credDir, PORTCULLIS_KEY: envKey };
    const s = await openIn(dir, { env });
    expect(s.keyring.source.kind).toBe("credential");
    await s.clients.add(newClient("vpn"));
    await s.close();
    // Sealed under the credential's key: the environment key alone is the wrong one.
    expect((await storeError(openIn(dir, { env: { PORTCULLIS_KEY: envKey } }))).code).toBe("key_mismatch");
  });

  test("rotation is refused when the key comes from the environment", async () => {
    dir = tempDir();
    const s = await openIn(dir, { env: { PORTCULLIS_KEY: envKey } });
    try {
      expect((await storeError(rotateKey(s))).code).toBe("unavailable");
    } finally {
      await s.close();
    }
  });
});

describe("AD binding and tampering in the database", () => {
  test("a token seed copied onto another token's row does not open", async () => {
    dir = tempDir();
    await seeded();
    rawExec("UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE serial = 'T1') WHERE serial = 'T2'");
    const s = await openIn(dir);
    try {
      expect((await s.tokens.findBySerial("T1"))!.secret).toEqual(newToken("T1").secret);
      expect((await storeError(s.tokens.findBySerial("T2"))).code).toBe("corrupt");
    } finally {
      await s.close();
    }
  });

  test("a client secret renamed to another client does not open", async () => {
    dir = tempDir();
    await seeded();
    rawExec("UPDATE radius_clients SET name = 'attacker' WHERE name = 'vpn'");
    const s = await openIn(dir);
    try {
      const err = await storeError(s.clients.findByName("attacker"));
      expect(err.code).toBe("corrupt");
      expect(err.message).toBe("a sealed secret could not be opened");
    } finally {
      await s.close();
    }
  });

  test("a flipped ciphertext character is detected", async () => {
    dir = tempDir();
    await seeded();
    rawExec(
      "UPDATE tokens SET secret = substr(secret, 1, length(secret) - 3) || CASE substr(secret, -3, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(secret, -2) WHERE serial = 'T1'",
    );
    const s = await openIn(dir);
    try {
      expect((await storeError(s.tokens.findBySerial("T1"))).code).toBe("corrupt");
    } finally {
      await s.close();
    }
  });
});

describe("rotateKey", () => {
  test("adds a key, re-seals every secret under it in one go, and old data stays readable", async () => {
    dir = tempDir();
    await seeded();
    const s = await openIn(dir);
    const server = await openIn(dir); // another process that opened before the rotation
    try {
      const oldId = s.keyring.current.id;
      const { keyId, resealed } = await rotateKey(s);
      expect(resealed).toBe(3);
      expect(keyId).not.toBe(oldId);
      expect(s.keyring.ids()).toEqual([oldId, keyId]);
      expect(fs.statSync(keyFileOf(dir)).mode & 0o777).toBe(0o600);

      const db = openDatabase(dbOf(dir));
      const stored = db.prepare<{ secret: string }>("SELECT secret FROM tokens UNION ALL SELECT secret FROM radius_clients").all();
      db.close();
      expect(stored.map((r) => r.secret.split(".")[1])).toEqual([keyId, keyId, keyId]);

      expect((await s.clients.findByName("vpn"))!.secret).toBe(newClient("vpn").secret);
      // The older connection meets an unknown key ID, re-reads the key file and carries on.
      expect((await server.tokens.findBySerial("T2"))!.secret).toEqual(newToken("T2").secret);
      expect(server.keyring.current.id).toBe(keyId);
      // New secrets are sealed under the new key.
      await s.tokens.add(newToken("T3"));
      expect((await server.tokens.findBySerial("T3"))!.secret).toEqual(newToken("T3").secret);
    } finally {
      await s.close();
      await server.close();
    }
    // Once nothing uses the old key, the file may drop it.
    const lines = fs.readFileSync(keyFileOf(dir), "utf8").trim().split("\n");
    fs.writeFileSync(keyFileOf(dir), lines.at(-1) + "\n");
    const reopened = await openIn(dir);
    expect((await reopened.tokens.list()).length).toBe(3);
    await reopened.close();
  });

  test("rotating twice keeps everything readable", async () => {
    dir = tempDir();
    await seeded();
    const s = await openIn(dir);
    await rotateKey(s);
    await rotateKey(s);
    await s.close();
    const again = await openIn(dir);
    expect((await again.tokens.list()).map((t) => t.secret)).toEqual([newToken("T1").secret, newToken("T2").secret]);
    expect(again.keyring.ids().length).toBe(3);
    await again.close();
  });

  test("re-seals admin TOTP seeds and pending self-service seeds too", async () => {
    dir = tempDir();
    const s = await openIn(dir);
    try {
      const u = await s.users.add(newUser("bob"));
      await s.adminAccounts.add({ name: "root", role: "root", passwordHash: "$argon2id$x", totpSecret: new Uint8Array(20).fill(3) });
      const now = Date.now();
      await s.selfService.addSession({ idHash: "s1", userId: u.id, method: "link", createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000 });
      await s.selfService.setPending("s1", { secret: new Uint8Array(20).fill(9), expiresAt: now + 600_000 });
      const { keyId, resealed } = await rotateKey(s);
      expect(resealed).toBe(2);
      const db = openDatabase(dbOf(dir));
      const stored = db.prepare<{ v: string }>("SELECT totp_secret AS v FROM admin_accounts UNION ALL SELECT pending_secret AS v FROM self_service_sessions").all();
      db.close();
      expect(stored.map((r) => r.v.split(".")[1])).toEqual([keyId, keyId]);
      expect((await s.selfService.touchSession("s1", now, 3_600_000))!.pending!.secret).toEqual(new Uint8Array(20).fill(9));
    } finally {
      await s.close();
    }
  });
});

describe("writable()", () => {
  test("false while another connection holds the write lock, true after", async () => {
    dir = tempDir();
    const s = await openIn(dir);
    const db = openDatabase(dbOf(dir));
    try {
      db.exec("BEGIN IMMEDIATE");
      expect(await s.writable()).toBe(false);
      db.exec("ROLLBACK");
      expect(await s.writable()).toBe(true);
    } finally {
      db.close();
      await s.close();
    }
  });
});
