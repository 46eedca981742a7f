// CLI changes leave admin events in the store (the running server emits them): one per change, none for a failure, no secret.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { setLogSink } from "../../../src/audit/log.ts";
import { cliActor } from "../../../src/cli/audit.ts";

setLogSink(() => {});

const MAIN = join(import.meta.dirname, "../../../src/main.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("cliActor", () => {
  test.each([
    [{ SUDO_USER: "alice" }, "root", "cli:alice"],
    [{ SUDO_USER: "" }, "root", "cli:root"],
    [{}, "svc", "cli:svc"],
    [{ SUDO_USER: "ali ce\n{}" }, "root", "cli:ali?ce???"],
    [{ SUDO_USER: "x".repeat(100) }, "root", `cli:${"x".repeat(64)}`],
    [{}, "", "cli:?"],
  ])("%o as %s → %s", (env, user, expected) => {
    expect(cliActor(env, () => user)).toBe(expected);
  });
});

function cli(dataDir: string, args: string[], input = ""): { code: number; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_") && k !== "SUDO_USER"));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], {
    input,
    env: { ...clean, SUDO_USER: "alice", PORTCULLIS_CONFIG: "" },
    encoding: "utf8",
    cwd: dataDir,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Row {
  actor: string;
  type: string;
  fields: string;
  emitted_at: number | null;
}

test("every CLI change records one admin event by cli:$SUDO_USER; failures and reads record none; no secret is stored", () => {
  const d = mkdtempSync(join(tmpdir(), "portcullis-cliaudit-"));
  dirs.push(d);
  writeFileSync(join(d, "portcullis.toml"), "");
  const PASSWORD = "Pa55word-never-logged";
  const CLIENT_SECRET = "client-shared-secret-never-stored-plain";
  const SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
  const csv = join(d, "users.csv");
  writeFileSync(csv, `username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\nzed,${PASSWORD}-2,,,,,,,\n`);

  const steps: [string[], string?][] = [
    [["client", "add", "fw", "--address", "192.0.2.1", "--secret-stdin"], CLIENT_SECRET],
    [["client", "set", "fw", "--approval-hold", "40", "--sms-code-length", "8"]],
    [["client", "set", "fw", "--approval-hold", "40"]], // changes nothing: no event
    [["user", "add", "bob", "--password-stdin"], PASSWORD],
    [["user", "add", "bob", "--password-stdin"], PASSWORD], // fails: exists
    [["user", "list"]],
    [["token", "add", "bob", "--totp", "--secret", SEED]],
    [["token", "disable", "1"]],
    [["token", "enable", "1"]],
    [["user", "unlock", "bob"]],
    [["apikey", "add", "ops", "--role", "admin"]],
    [["apikey", "disable", "ops"]],
    [["apikey", "remove", "ops"]],
    [["apikey", "remove", "ops"]], // fails: gone
    [["key", "rotate"]],
    [["user", "import", csv]],
    [["token", "remove", "1"]],
    [["user", "remove", "bob"]],
    [["client", "remove", "fw"]],
    [["client", "remove", "fw"]], // fails: gone
  ];
  const outputs: string[] = [];
  const failed: number[] = [];
  steps.forEach(([args, input], i) => {
    const r = cli(d, args, input ?? "");
    outputs.push(r.stdout);
    if (r.code !== 0) failed.push(i);
  });
  expect(failed).toEqual([4, 13, 19]);
  const apiKey = outputs[10]!.trim();
  expect(apiKey.length).toBeGreaterThan(20);

  const db = new Database(join(d, "portcullis.db"), { readonly: true });
  const rows = db.prepare("SELECT actor, type, fields, emitted_at FROM admin_events ORDER BY id").all() as Row[];
  db.close();
  const keyId = JSON.parse(rows.find((r) => r.type === "admin.key_rotated")?.fields ?? "{}").keyId;
  expect(rows.map((r) => [r.type, JSON.parse(r.fields)])).toEqual([
    ["admin.client_added", { client: "fw", address: "192.0.2.1/32" }],
    ["admin.client_updated", { client: "fw", fields: ["approvalHoldS", "smsCodeLength"] }],
    ["admin.user_added", { user: "bob" }],
    ["admin.token_enrolled", { user: "bob", token: 1, kind: "totp" }],
    ["admin.token_state", { token: 1, state: "disabled" }],
    ["admin.token_state", { token: 1, state: "active" }],
    ["admin.user_unlocked", { user: "bob", cleared: false }],
    ["admin.apikey_added", { apikey: "ops", role: "admin" }],
    ["admin.apikey_state", { apikey: "ops", disabled: true }],
    ["admin.apikey_removed", { apikey: "ops" }],
    ["admin.key_rotated", { keyId, resealed: 2 }],
    ["admin.users_imported", { count: 1 }],
    ["admin.token_removed", { token: 1 }],
    ["admin.user_removed", { user: "bob" }],
    ["admin.client_removed", { client: "fw" }],
  ]);
  expect(typeof keyId).toBe("string");
  expect(new Set(rows.map((r) => r.actor))).toEqual(new Set(["cli:alice"]));
  expect(rows.every((r) => r.emitted_at === null)).toBe(true);
  const dump = JSON.stringify(rows);
  for (const secret of [PASSWORD, CLIENT_SECRET, SEED, apiKey]) expect(dump).not.toContain(secret);
  // The raw database file holds no plaintext secret either (the WAL may still hold the newest pages).
  const raw = [join(d, "portcullis.db"), join(d, "portcullis.db-wal")].map((f) => {
    try {
      return readFileSync(f).toString("latin1");
    } catch {
      return "";
    }
  });
  for (const secret of [PASSWORD, CLIENT_SECRET, apiKey]) expect(raw.join("")).not.toContain(secret);
}, 60_000);
