// Admin API authentication and roles: 401 for missing/unknown/disabled/expired keys, 403 below the
// route's role, operator read-only, admin/root keys managed by root only; validation never echoes input.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanup } from "../../store/helpers.ts";
import { adminFixture, type Keys } from "./helpers.ts";

let f: Awaited<ReturnType<typeof adminFixture>>;
beforeAll(async () => {
  f = await adminFixture();
  await f.store.users.add({ username: "alice", passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
});
afterAll(() => cleanup(f.dir));

type Who = keyof Keys | "none" | "wrong";
const keyOf = (who: Who) => (who === "none" ? undefined : who === "wrong" ? "pcl_not-a-real-key" : f.keys[who]);

describe("roles matrix", () => {
  // [who, method, path, body, expected status]
  test.each<[Who, string, string, unknown, number]>([
    ["none", "GET", "/users", undefined, 401],
    ["wrong", "GET", "/users", undefined, 401],
    ["disabled", "GET", "/users", undefined, 401],
    ["expired", "GET", "/users", undefined, 401],
    ["magiclink", "GET", "/users", undefined, 403],
    ["operator", "GET", "/users", undefined, 200],
    ["admin", "GET", "/users", undefined, 200],
    ["root", "GET", "/users", undefined, 200],
    ["operator", "GET", "/tokens", undefined, 200],
    ["operator", "GET", "/clients", undefined, 200],
    ["operator", "GET", "/apikeys", undefined, 200],
    ["operator", "GET", "/endpoints", undefined, 200],
    ["operator", "POST", "/users/alice/unlock", undefined, 200],
    ["operator", "POST", "/users", { username: "x1" }, 403],
    ["operator", "DELETE", "/users/alice", undefined, 403],
    ["operator", "PUT", "/endpoints/e1", {}, 403],
    ["operator", "GET", "/delivery/log", undefined, 403],
    ["operator", "POST", "/delivery/test", { msisdn: "+46701234567" }, 403],
    ["admin", "POST", "/users/alice/unlock", undefined, 200],
    ["admin", "POST", "/apikeys", { name: "ml1", role: "magiclink" }, 201],
    ["admin", "POST", "/apikeys", { name: "op1", role: "operator" }, 201],
    ["admin", "POST", "/apikeys", { name: "ad1", role: "admin" }, 403],
    ["admin", "POST", "/apikeys", { name: "rt1", role: "root" }, 403],
    ["admin", "POST", "/apikeys/k-root/disable", undefined, 403],
    ["admin", "DELETE", "/apikeys/k-admin", undefined, 403],
    ["root", "POST", "/apikeys", { name: "ad2", role: "admin" }, 201],
    ["root", "POST", "/apikeys", { name: "rt2", role: "root" }, 201],
    ["root", "POST", "/apikeys/ad2/disable", undefined, 200],
    ["admin", "POST", "/apikeys/op1/disable", undefined, 200],
  ])("%s %s %s → %d", async (who, method, path, body, status) => {
    const r = await f.call(method, path, { key: keyOf(who), body });
    expect(r.status).toBe(status);
    if (status === 401) expect(await r.json()).toMatchObject({ error: "unauthorized" });
    if (status === 403) expect(await r.json()).toMatchObject({ error: "forbidden" });
  });

  test("Authorization: Bearer works as well as the api-key header", async () => {
    expect((await f.call("GET", "/users", { key: f.keys.operator, bearer: true })).status).toBe(200);
    expect((await f.call("GET", "/users", { key: "pcl_wrong", bearer: true })).status).toBe(401);
  });

  test("a disabled admin key stops working at once", async () => {
    const r = await f.call("POST", "/apikeys", { key: f.keys.root, body: { name: "short-lived", role: "admin" } });
    const { key } = (await r.json()) as { key: string };
    expect((await f.call("GET", "/users", { key })).status).toBe(200);
    expect((await f.call("POST", "/apikeys/short-lived/disable", { key: f.keys.root })).status).toBe(200);
    expect((await f.call("GET", "/users", { key })).status).toBe(401);
  });
});

describe("validation never echoes input", () => {
  const SECRET = "hunter2-Very-Secret-Value";
  test.each<[string, string, unknown]>([
    ["a password of the wrong type", "/users", { username: "bob", password: 12, phone: SECRET }],
    ["an unknown key holding a secret", "/users", { username: "bob", [SECRET]: SECRET }],
    ["a client secret that is too long", "/clients", { name: "nas", address: SECRET, secret: SECRET.repeat(20) }],
    ["a bad token secret", "/tokens", { user: "alice", secret: `${SECRET}!!` }],
    ["a bad phone number", "/users", { username: "bob2", phone: `+${SECRET}` }],
    ["a bad CIDR", "/clients", { name: "nas", address: SECRET, secret: "a-long-shared-secret-1" }],
    ["an import file that is not PSKC", "/tokens/import", { format: "pskc", content: `<x>${SECRET}</x>`, password: SECRET }],
  ])("%s", async (_what, path, body) => {
    const r = await f.call("POST", path, { key: f.keys.admin, body });
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("hunter2");
    const j = JSON.parse(text) as { error: string; issues: { path: string }[] };
    expect(j.error).toBe("bad_request");
    expect(j.issues.length).toBeGreaterThan(0);
  });

  test("malformed JSON is a 400 without the body", async () => {
    const r = await f.call("POST", "/users", { key: f.keys.admin, body: `{"username": "hunter2-Very-Secret-Value"` });
    expect(r.status).toBe(400);
    expect(await r.text()).not.toContain("hunter2");
  });

  test("no log line holds the secret", () => {
    expect(JSON.stringify(f.logs)).not.toContain("hunter2");
  });
});
