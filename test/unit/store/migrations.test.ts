import { afterEach, describe, expect, test } from "bun:test";
import * as path from "node:path";
import { openDatabase } from "../../../src/runtime/sqlite.ts";
import { LATEST_VERSION, MIGRATIONS, migrationSQL } from "../../../src/store/migrations.ts";
import { cleanup, openIn, tempDir } from "./helpers.ts";

let dir: string;
afterEach(() => cleanup(dir));

describe("migrations", () => {
  test("versions are 1..n with no gap, with names", () => {
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual(versions.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(versions[versions.length - 1]!);
    for (const m of MIGRATIONS) expect(m.name).toMatch(/^[a-z0-9_]+$/);
  });

  test.each(["sqlite", "postgres"] as const)("every placeholder is expanded for %s", (dialect) => {
    for (const m of MIGRATIONS) expect(migrationSQL(m, dialect)).not.toContain("{{");
  });

  test("business tables use only portable column types", () => {
    const sql = MIGRATIONS.map((m) => [m.sql, ...Object.values(m.dialects ?? {})].join("\n")).join("\n");
    expect(sql).not.toMatch(/\b(BLOB|REAL|NUMERIC|AUTOINCREMENT|STRICT|DATETIME)\b/);
  });

  test("applied once and recorded in schema_migrations; reopening applies nothing", async () => {
    dir = tempDir();
    await (await openIn(dir, { now: () => 1234 })).close();
    await (await openIn(dir, { now: () => 5678 })).close();
    const db = openDatabase(path.join(dir, "portcullis.db"));
    const rows = db.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").all();
    db.close();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: 1234 })));
  });

  test("a database from a newer build is refused", async () => {
    dir = tempDir();
    await (await openIn(dir)).close();
    const db = openDatabase(path.join(dir, "portcullis.db"));
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)").run(LATEST_VERSION + 1);
    db.close();
    await expect(openIn(dir)).rejects.toThrow(TypeError);
  });
});

/** Writes a version-1 database (as the first build left it) with one user and one token. */
function versionOneDatabase(file: string): void {
  const db = openDatabase(file);
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.exec(migrationSQL(MIGRATIONS[0]!, "sqlite"));
  db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial', 0)").run();
  db.prepare("INSERT INTO users (id, username, type, created_at) VALUES (1, 'alice', 'totp', 0)").run();
  db.prepare(
    "INSERT INTO tokens (id, serial, user_id, kind, secret, algorithm, digits, period, counter, last_step, drift, state, created_at) VALUES (7, 'T-7', 1, 'totp', 'x', 'SHA1', 6, 30, 3, 123456, -1, 'active', 0)",
  ).run();
  db.close();
}

test("migration 2 moves each token's replay guards into token_marks without losing them", () => {
  dir = tempDir();
  const file = path.join(dir, "portcullis.db");
  versionOneDatabase(file);
  const db = openDatabase(file);
  db.exec(migrationSQL(MIGRATIONS[1]!, "sqlite"));
  expect(db.prepare("SELECT token_id, counter, last_step, drift FROM token_marks").all()).toEqual([{ token_id: 7, counter: 3, last_step: 123456, drift: -1 }]);
  expect(db.prepare("SELECT name FROM pragma_table_info('tokens') WHERE name IN ('counter', 'last_step', 'drift')").all()).toEqual([]);
  db.close();
});

test("a version-1 database is migrated on open and its tokens keep working", async () => {
  dir = tempDir();
  const db = openDatabase(path.join(dir, "portcullis.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.exec(migrationSQL(MIGRATIONS[0]!, "sqlite"));
  db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial', 0)").run();
  db.prepare("INSERT INTO users (id, username, type, created_at) VALUES (1, 'alice', 'totp', 0)").run();
  db.close();
  const store = await openIn(dir);
  const token = await store.tokens.add({ serial: "T-1", userId: 1, kind: "totp", secret: new Uint8Array(20).fill(1), algorithm: "SHA1", digits: 6, period: 30, state: "active" });
  expect(await store.tokens.advanceTOTP(token.id, 10, 0)).toBe(true);
  expect((await store.tokens.findById(token.id))?.lastStep).toBe(10);
  await store.close();
});

/** Writes a version-2 database with data in every table that references users (as the core release left it). */
function versionTwoDatabase(file: string): void {
  const db = openDatabase(file);
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.exec(migrationSQL(MIGRATIONS[0]!, "sqlite"));
  db.exec(migrationSQL(MIGRATIONS[1]!, "sqlite"));
  db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial', 0), (2, 'token_marks', 0)").run();
  db.exec("PRAGMA foreign_keys = ON");
  db.prepare(
    "INSERT INTO radius_clients (id, name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, created_at) VALUES (1, 'vpn', '192.0.2.1/32', 'x', 'password', 'challenge', 1, 0, 5)",
  ).run();
  db.prepare(
    "INSERT INTO users (id, username, password_hash, type, phone, email, disabled, expires_at, created_at) VALUES (3, 'alice', '$argon2id$h', 'totp', '+46701234567', 'a@example.com', 0, NULL, 11), (9, 'bob', NULL, 'password', NULL, NULL, 1, 99, 12)",
  ).run();
  db.prepare("INSERT INTO tokens (id, serial, user_id, kind, secret, algorithm, digits, period, state, created_at) VALUES (7, 'T-7', 3, 'totp', 'x', 'SHA1', 6, 30, 'active', 0), (8, 'T-8', 9, 'hotp', 'x', 'SHA1', 6, 30, 'lost', 0)").run();
  db.prepare("INSERT INTO token_marks (token_id, counter, last_step, drift) VALUES (7, 0, 555, 1), (8, 4, -1, 0)").run();
  db.prepare("INSERT INTO challenges (id, client_name, user_id, username, expires_at, failures, data) VALUES ('c1', 'vpn', 3, 'alice', 1000, 1, '{}')").run();
  db.close();
}

describe("migration 3 (directories) on a populated version-2 database", () => {
  const KEY_ENV = { PORTCULLIS_KEY: Buffer.alloc(32, 3).toString("base64") };

  async function migrated(): Promise<ReturnType<typeof openDatabase>> {
    dir = tempDir();
    const file = path.join(dir, "portcullis.db");
    versionTwoDatabase(file);
    await (await openIn(dir, { env: KEY_ENV })).close();
    return openDatabase(file);
  }

  test("users keep their ids and every column; tokens, marks and challenges still point at them", async () => {
    const db = await migrated();
    expect(db.prepare("SELECT id, username, password_hash, type, phone, email, disabled, expires_at, created_at, directory, external_id, directory_phone FROM users ORDER BY id").all()).toEqual([
      { id: 3, username: "alice", password_hash: "$argon2id$h", type: "totp", phone: "+46701234567", email: "a@example.com", disabled: 0, expires_at: null, created_at: 11, directory: null, external_id: null, directory_phone: null },
      { id: 9, username: "bob", password_hash: null, type: "password", phone: null, email: null, disabled: 1, expires_at: 99, created_at: 12, directory: null, external_id: null, directory_phone: null },
    ]);
    // DROP TABLE with foreign keys on would have nulled these (SET NULL) and deleted the challenge (CASCADE).
    expect(db.prepare("SELECT id, user_id FROM tokens ORDER BY id").all()).toEqual([
      { id: 7, user_id: 3 },
      { id: 8, user_id: 9 },
    ]);
    expect(db.prepare("SELECT token_id, last_step FROM token_marks ORDER BY token_id").all()).toEqual([
      { token_id: 7, last_step: 555 },
      { token_id: 8, last_step: -1 },
    ]);
    expect(db.prepare("SELECT id, user_id FROM challenges").all()).toEqual([{ id: "c1", user_id: 3 }]);
    expect(db.prepare("SELECT name, directories FROM radius_clients").all()).toEqual([{ name: "vpn", directories: null }]);
    expect(db.prepare("SELECT count(*) AS n FROM pragma_foreign_key_check").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'users_v3'").all()).toEqual([]);
    db.close();
  });

  test("the foreign keys into users still act after the rebuild", async () => {
    const db = await migrated();
    db.exec("PRAGMA foreign_keys = ON");
    db.prepare("DELETE FROM users WHERE id = 3").run();
    expect(db.prepare("SELECT id, user_id FROM tokens ORDER BY id").all()).toEqual([
      { id: 7, user_id: null },
      { id: 8, user_id: 9 },
    ]);
    expect(db.prepare("SELECT count(*) AS n FROM challenges").get()).toEqual({ n: 0 });
    expect(() => db.prepare("INSERT INTO tokens (serial, user_id, kind, secret, algorithm, digits, period, state, created_at) VALUES ('T-x', 424242, 'totp', 'x', 'SHA1', 6, 30, 'active', 0)").run()).toThrow();
    db.close();
  });

  test("type may be NULL only on a directory-linked record; (directory, external_id) is unique when both are set", async () => {
    const db = await migrated();
    const insert = db.prepare("INSERT INTO users (username, type, directory, external_id, created_at) VALUES (?, ?, ?, ?, 0)");
    insert.run("carol", null, "corp", "0f8fad5b-d9cb-469f-a165-70867728950e");
    insert.run("dave", null, "corp", null);
    insert.run("erin", null, "corp", null); // unlinked yet: NULLs never collide
    insert.run("frank", "totp", "lab", "0f8fad5b-d9cb-469f-a165-70867728950e"); // same ID in another profile
    expect(() => insert.run("gina", "totp", "corp", "0f8fad5b-d9cb-469f-a165-70867728950e")).toThrow(/UNIQUE/);
    expect(() => insert.run("hal", null, null, null)).toThrow(/CHECK/);
    expect(() => insert.run("ivy", "totp", null, "some-id")).toThrow(/CHECK/);
    db.close();
  });

  test("the store opens the migrated file with foreign keys on and reads the new fields", async () => {
    dir = tempDir();
    versionTwoDatabase(path.join(dir, "portcullis.db"));
    const store = await openIn(dir, { env: KEY_ENV });
    const alice = await store.users.findByName("alice");
    expect(alice).toMatchObject({ id: 3, type: "totp", directory: null, externalId: null, directoryPhone: null });
    await store.users.update(3, { directory: "corp", externalId: "guid-1" });
    expect((await store.users.findByExternal("corp", "guid-1"))?.username).toBe("alice");
    await store.close();
  });

  test("the postgres text of migration 3 drops NOT NULL instead of rebuilding", () => {
    const sql = migrationSQL(MIGRATIONS[2]!, "postgres");
    expect(sql).toContain("ALTER COLUMN type DROP NOT NULL");
    expect(sql).not.toContain("DROP TABLE");
    expect(migrationSQL(MIGRATIONS[2]!, "sqlite")).toContain("DROP TABLE users");
  });
});

test("migration 8 keeps each per-identity lockout counter as the identity's counter across sources", async () => {
  dir = tempDir();
  const db = openDatabase(path.join(dir, "portcullis.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  for (const m of MIGRATIONS.filter((m) => m.version < 8)) {
    db.exec(migrationSQL(m, "sqlite"));
    db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
  }
  db.prepare("INSERT INTO lockouts (subject, kind, failures, locked_until, last_failure_at) VALUES ('alice', 'password', 6, 5000, 4000)").run();
  db.close();
  const store = await openIn(dir);
  try {
    expect(await store.lockouts.list()).toEqual([{ key: "alice", kind: "password", source: "", failures: 6, lockedUntil: 5000, lastFailureAt: 4000 }]);
    expect(await store.lockouts.knownSources()).toEqual([]);
  } finally {
    await store.close();
  }
});

test("migration 12 gives existing clients the default phone settings", async () => {
  dir = tempDir();
  const db = openDatabase(path.join(dir, "portcullis.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  for (const m of MIGRATIONS.filter((m) => m.version < 12)) {
    db.exec(migrationSQL(m, "sqlite"));
    db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
  }
  db.prepare("INSERT INTO radius_clients (name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, created_at) VALUES ('vpn', '192.0.2.1/32', 'x', 'password', 'challenge', 1, 0, 0)").run();
  db.exec(migrationSQL(MIGRATIONS.find((m) => m.version === 12)!, "sqlite"));
  expect(db.prepare("SELECT approval_hold_s, approval_mode, approval_number_match, sms_code_length, sms_code_alphabet FROM radius_clients").all()).toEqual([
    { approval_hold_s: 25, approval_mode: "hold", approval_number_match: 0, sms_code_length: null, sms_code_alphabet: null },
  ]);
  db.close();
});

test("migration 21 keeps approvals and self-service sessions, and then takes kind 'self-service' and method 'app'", async () => {
  dir = tempDir();
  const db = openDatabase(path.join(dir, "portcullis.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  for (const m of MIGRATIONS.filter((m) => m.version < 21)) {
    db.exec(migrationSQL(m, "sqlite"));
    db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
  }
  const kindBefore = () => db.prepare("INSERT INTO approvals (id, kind, username, client, state, texts, created_at, expires_at) VALUES ('x', 'self-service', 'alice', 'self-service', 'pending', '{}', 0, 1)").run();
  expect(kindBefore).toThrow();
  db.prepare("INSERT INTO users (id, username, type, created_at) VALUES (1, 'alice', 'touch', 0)").run();
  db.prepare("INSERT INTO approvals (id, kind, username, client, source, state, channel, link_hash, texts, number_match, created_at, expires_at) VALUES ('a1', 'radius', 'alice', 'vpn', '203.0.113.7', 'pending', 'app', 'h1', '{}', 42, 1000, 99000)").run();
  db.prepare("INSERT INTO self_service_sessions (id_hash, user_id, method, created_at, last_seen_at, expires_at) VALUES ('s1', 1, 'link', 1, 2, 3)").run();
  db.close();
  const store = await openIn(dir);
  try {
    expect(await store.approvals.get("a1")).toMatchObject({ id: "a1", kind: "radius", user: "alice", client: "vpn", source: "203.0.113.7", state: "pending", channel: "app", numberMatch: 42, createdAt: 1000, expiresAt: 99000 });
    // The one-pending index came back: a second pending radius approval of alice at vpn joins.
    const again = await store.approvals.createOrJoin({ id: "a2", kind: "radius", user: "alice", client: "vpn", source: "203.0.113.7", msisdn: null, apiKeyId: null, state: "pending", channel: null, linkHash: "h2", texts: "{}", numberMatch: null, createdAt: 2000, expiresAt: 90000, answeredAt: null }, 2000);
    expect(again).toMatchObject({ created: false, approval: { id: "a1" } });
    await store.approvals.create({ id: "a3", kind: "self-service", user: "alice", client: "self-service", source: null, msisdn: null, apiKeyId: null, state: "pending", channel: null, linkHash: "h3", texts: "{}", numberMatch: null, createdAt: 2000, expiresAt: 90000, answeredAt: null });
    expect((await store.approvals.pendingForUser("alice", 3000)).map((a) => a.kind)).toEqual(["radius", "self-service"]);
    await store.selfService.addSession({ idHash: "s2", userId: 1, method: "app", createdAt: 5, lastSeenAt: 5, expiresAt: 10_000 });
    expect((await store.selfService.touchSession("s2", 6, 600_000))?.method).toBe("app");
  } finally {
    await store.close();
  }
});
