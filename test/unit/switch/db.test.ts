// The relay's state: enrolment tokens (hashed, single use, 1 hour), appliance removal, and the
// routes of links in flight and of the approver app (enrolment codes, devices).

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SwitchDb, SWITCH_DB_FILE, TOKEN_LIFETIME_MS } from "../../../src/switch/db.ts";

const dirs: string[] = [];
function open(): SwitchDb {
  const d = mkdtempSync(join(tmpdir(), "switch-db-"));
  dirs.push(d);
  return new SwitchDb(d);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SECRET = "s".repeat(43);
const KEY = "k".repeat(43);

test("a token is exchanged once for the key; a wrong, reused or expired token is refused", () => {
  const db = open();
  db.add("a1", SECRET, 1000);
  expect(db.enrol("a1", "x".repeat(43), KEY, 2000)).toEqual({ ok: false, reason: "wrong_token" });
  expect(db.enrol("nobody", SECRET, KEY, 2000)).toEqual({ ok: false, reason: "unknown_appliance" });
  expect(db.enrol("a1", SECRET, KEY, 2000)).toEqual({ ok: true });
  expect(db.get("a1")).toMatchObject({ publicKey: KEY, enrolledAt: 2000, tokenExpires: null });
  expect(db.enrol("a1", SECRET, "other", 3000)).toEqual({ ok: false, reason: "no_token" });
  expect(db.get("a1")!.publicKey).toBe(KEY);

  db.add("a2", SECRET, 1000);
  expect(db.enrol("a2", SECRET, KEY, 1000 + TOKEN_LIFETIME_MS)).toEqual({ ok: false, reason: "token_expired" });
  db.close();
});

test("names are unique; the database file is private; nothing but the hash is stored", () => {
  const db = open();
  db.add("a1", SECRET, 1);
  expect(() => db.add("a1", SECRET, 2)).toThrow("exists");
  const file = join(dirs[0]!, SWITCH_DB_FILE);
  expect(statSync(file).mode & 0o077).toBe(0);
  db.close();
  expect(readFileSync(file).includes(Buffer.from(SECRET))).toBe(false);
});

test("a link belongs to the appliance that claimed it, until it expires; removal forgets it", () => {
  const db = open();
  db.add("a1", SECRET, 1);
  db.add("a2", SECRET, 1);
  expect(db.claimLink("h1", "a1", 10_000)).toBe(true);
  expect(db.claimLink("h1", "a1", 20_000)).toBe(true);
  expect(db.claimLink("h1", "a2", 20_000)).toBe(false);
  expect(db.linkOwner("h1", 15_000)).toBe("a1");
  expect(db.linkOwner("h1", 20_000)).toBeUndefined();
  expect(db.purgeExpired(20_000)).toBe(1);
  expect(db.claimLink("h2", "a1", 10_000)).toBe(true);
  expect(db.remove("a1")).toBe(true);
  expect(db.remove("a1")).toBe(false);
  expect(db.linkOwner("h2", 0)).toBeUndefined();
  db.close();
});

test("an enrolment code and a device belong to the appliance that claimed them first; removal forgets both", () => {
  const db = open();
  db.add("a1", SECRET, 1);
  db.add("a2", SECRET, 1);
  const code = "c".repeat(64);
  expect(db.claimEnrolment(code, "a1", 10_000)).toBe(true);
  expect(db.claimEnrolment(code, "a1", 12_000)).toBe(true);
  expect(db.claimEnrolment(code, "a2", 12_000)).toBe(false);
  expect(db.enrolmentOwner(code, 11_000)).toBe("a1");
  expect(db.enrolmentOwner(code, 12_000)).toBeUndefined();
  expect(db.purgeExpired(12_000)).toBe(1);
  expect(db.claimDevice("d1", "a1", 5)).toBe(true);
  expect(db.claimDevice("d1", "a1", 6)).toBe(true);
  expect(db.claimDevice("d1", "a2", 6)).toBe(false);
  expect(db.deviceOwner("d1")).toBe("a1");
  expect(db.deviceOwner("d2")).toBeUndefined();
  expect(db.claimDevice("d2", "a2", 5)).toBe(true);
  expect(db.claimEnrolment(code, "a1", 30_000)).toBe(true);
  expect(db.remove("a1")).toBe(true);
  expect(db.deviceOwner("d1")).toBeUndefined();
  expect(db.enrolmentOwner(code, 0)).toBeUndefined();
  expect(db.deviceOwner("d2")).toBe("a2");
  db.close();
});
