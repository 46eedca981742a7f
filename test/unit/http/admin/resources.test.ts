// Admin API resources against a real SQLite store: each happy path and its error paths, answers
// checked against the schemas the OpenAPI document publishes.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { buildAdminApp } from "../../../../src/http/app.ts";
import { AdminRouter, ADMIN_BASE, type AdminRouteSpec } from "../../../../src/http/admin/route.ts";
import { registerAdminResources } from "../../../../src/http/admin/index.ts";
import { createDispatcher, createSmsHttpChannel } from "../../../../src/delivery/index.ts";
import { decodeBase32, encodeBase32, generateHOTP, generateTOTP } from "../../../../src/otp/index.ts";
import { verifyPassword } from "../../../../src/runtime/password.ts";
import { cleanup } from "../../store/helpers.ts";
import { adminFixture, NOW } from "./helpers.ts";

let f: Awaited<ReturnType<typeof adminFixture>>;
let specs: readonly AdminRouteSpec[];
beforeAll(async () => {
  f = await adminFixture({
    configPatch: (c) => {
      c.endpoint = [{ ...c.endpoint[0], name: "from-file" } as (typeof c.endpoint)[number]];
    },
  });
  const { Hono } = await import("hono");
  specs = registerAdminResources(new AdminRouter(new Hono(), f.deps));
});
afterAll(() => cleanup(f.dir));

/** The documented 2xx schema of METHOD PATH (Hono path below ADMIN_BASE). */
function documented(method: string, path: string, status: number) {
  const spec = specs.find((s) => s.method === method.toLowerCase() && s.path === path);
  return spec?.responses[status]?.schema;
}

/** Calls the API and checks the answer against its documented schema. */
async function ok<T = any>(method: string, path: string, route: string, status: number, body?: unknown, key = f.keys.admin): Promise<T> {
  const r = await f.call(method, path, { key, body });
  const text = await r.text();
  if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  if (status === 204) return undefined as T;
  const json = JSON.parse(text);
  const schema = documented(method, route, status);
  expect(schema).toBeDefined();
  const parsed = v.safeParse(schema!, json);
  if (!parsed.success) throw new Error(`${method} ${route} answer does not match its schema: ${JSON.stringify(parsed.issues.map((i) => i.path?.map((p) => p.key)))}`);
  return json as T;
}

async function status(method: string, path: string, body?: unknown, key = f.keys.admin): Promise<number> {
  return (await f.call(method, path, { key, body })).status;
}

describe("users", () => {
  test("add with a password (argon2id), show, list, update, unlock, remove", async () => {
    const u = await ok("POST", "/users", "/users", 201, { username: "Alice", password: "correct horse", phone: "+46701234567", email: "alice@example.com" });
    expect(u).toMatchObject({ username: "alice", type: "totp", password: "set", phone: "+46701234567" });
    const stored = await f.store.users.findByName("alice");
    expect(stored!.passwordHash!.startsWith("$argon2id$")).toBe(true);
    expect(await verifyPassword("correct horse", stored!.passwordHash!)).toBe(true);
    expect(JSON.stringify(u)).not.toContain("argon2");

    const list = await ok<any[]>("GET", "/users", "/users", 200, undefined, f.keys.operator);
    expect(list.find((x) => x.username === "alice")).toMatchObject({ password: true, tokens: 0 });

    const upd = await ok("PATCH", "/users/alice", "/users/:name", 200, { type: 4, phone: null, disabled: true, expires: "2099-12-31" });
    expect(upd).toMatchObject({ type: "concatenated", typeNumber: 4, phone: null, disabled: true, expiresAt: "2100-01-01T00:00:00.000Z" });
    await ok("PATCH", "/users/alice", "/users/:name", 200, { password: "new password 2" });
    expect(await verifyPassword("new password 2", (await f.store.users.findByName("alice"))!.passwordHash!)).toBe(true);

    await f.store.lockouts.recordFailure("alice", "code", "csid:203.0.113.7", NOW, { staleBefore: 0, lockedUntil: (scope) => (scope === "source" ? NOW + 60_000 : 0) });
    await f.store.lockouts.recordSuccess("alice", "nas:vpn", NOW - 1000, { keep: 16, forgetBefore: 0 });
    const shown = await ok("GET", "/users/alice", "/users/:name", 200);
    expect(shown.lockout).toEqual({
      password: { failures: 0, lockedUntil: null },
      code: { failures: 1, lockedUntil: null },
      sources: [{ source: "csid:203.0.113.7", kind: "code", failures: 1, lockedUntil: new Date(NOW + 60_000).toISOString() }],
      knownSources: [{ source: "nas:vpn", lastSuccessAt: new Date(NOW - 1000).toISOString() }],
    });
    expect(await ok("POST", "/users/alice/unlock", "/users/:name/unlock", 200)).toEqual({ cleared: true });
    expect((await ok("GET", "/users/alice", "/users/:name", 200)).lockout.sources).toEqual([]);
    expect(await ok("POST", "/users/alice/unlock", "/users/:name/unlock", 200)).toEqual({ cleared: false });

    await ok("DELETE", "/users/alice", "/users/:name", 204);
    expect(await f.store.users.findByName("alice")).toBeUndefined();
  });

  test.each<[string, string, string, unknown, number]>([
    ["duplicate", "POST", "/users", { username: "dup" }, 409],
    ["unknown directory", "POST", "/users", { username: "d1", directory: "corp" }, 400],
    ["bad type", "POST", "/users", { username: "t1", type: "nonsense" }, 400],
    ["type number out of range", "POST", "/users", { username: "t2", type: 12 }, 400],
    ["bad e-mail", "POST", "/users", { username: "e1", email: "not-an-address" }, 400],
    ["local number without region", "POST", "/users", { username: "p1", phone: "0701234567" }, 400],
    ["empty name after normalisation", "POST", "/users", { username: "@corp" }, 400],
    ["unknown field", "POST", "/users", { username: "x", admin: true }, 400],
    ["show unknown", "GET", "/users/nobody", undefined, 404],
    ["update unknown", "PATCH", "/users/nobody", { disabled: true }, 404],
    ["type null on a local user", "PATCH", "/users/dup", { type: null }, 400],
    ["past expiry", "PATCH", "/users/dup", { expires: "2001-01-01" }, 400],
    ["not a date", "PATCH", "/users/dup", { expires: "2023-02-30" }, 400],
    ["remove unknown", "DELETE", "/users/nobody", undefined, 404],
  ])("%s → %d", async (_what, method, path, body, expected) => {
    if (!(await f.store.users.findByName("dup"))) await f.call("POST", "/users", { key: f.keys.admin, body: { username: "dup" } });
    expect(await status(method, path, body)).toBe(expected);
  });

  test("CSV import: all rows, then a clash imports nothing", async () => {
    const header = "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period";
    const csv = `${header}\ncsv1,pw-one-1,totp,,,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,,,\ncsv2,,password,,,,,,\n`;
    expect(await ok("POST", "/users/import", "/users/import", 201, { csv })).toEqual({ imported: 2, withToken: 1, warnings: [] });
    expect(await status("POST", "/users/import", { csv })).toBe(409);
    const bad = await f.call("POST", "/users/import", { key: f.keys.admin, body: { csv: `${header}\ncsv3,,nonsense,,,,,,\n` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { issues: { path: string }[] }).issues[0]!.path).toBe("csv.line.2");
  });
});

describe("tokens", () => {
  let id: number;
  let secret: Uint8Array;
  beforeAll(async () => {
    await f.call("POST", "/users", { key: f.keys.admin, body: { username: "tom", password: "tom-password" } });
  });

  test("enrol TOTP: otpauth URI and SVG QR code, seed never listed", async () => {
    const r = await ok("POST", "/tokens", "/tokens", 201, { user: "tom", digits: 8, algorithm: "SHA256" });
    expect(r.token).toMatchObject({ kind: "totp", user: "tom", digits: 8, algorithm: "SHA256", state: "active" });
    expect(r.otpauthUri).toMatch(/^otpauth:\/\/totp\/Portcullis:tom\?secret=[A-Z2-7]+&issuer=Portcullis&algorithm=SHA256&digits=8$/);
    expect(r.qrSvg).toStartWith("<svg");
    expect(r.qrSvg).toContain("</svg>");
    id = r.token.id;
    secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(r.otpauthUri)![1]!);
    const listed = await f.call("GET", "/tokens?user=tom", { key: f.keys.operator });
    expect(await listed.text()).not.toContain(encodeBase32(secret));
  });

  test("resync with two consecutive codes learns the drift; non-consecutive codes change nothing", async () => {
    const p = { secret, algorithm: "SHA256" as const, digits: 8 as const, period: 30 };
    const ahead = NOW + 5 * 30_000;
    const [c1, c2] = [generateTOTP(p, { now: ahead }), generateTOTP(p, { now: ahead + 30_000 })];
    expect(await ok("POST", `/tokens/${id}/resync`, "/tokens/:id/resync", 200, { code1: c1, code2: c2 })).toEqual({ drift: 6, counter: null });
    expect(await status("POST", `/tokens/${id}/resync`, { code1: c2, code2: c1 })).toBe(409);
    expect(await status("POST", `/tokens/${id}/resync`, { code1: "123456", code2: "234567" })).toBe(400);
  });

  test("HOTP with a given secret and counter; resync moves the counter", async () => {
    const seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    const r = await ok("POST", "/tokens", "/tokens", 201, { user: "tom", kind: "hotp", secret: seed, counter: 3 });
    expect(r.otpauthUri).toContain("counter=3");
    const p = { secret: decodeBase32(seed), algorithm: "SHA1" as const, digits: 6 as const };
    const res = await ok("POST", `/tokens/${r.token.id}/resync`, "/tokens/:id/resync", 200, { code1: generateHOTP(p, 10), code2: generateHOTP(p, 11) });
    expect(res).toEqual({ drift: null, counter: 12 });
  });

  test("disable, enable, assign, unassign, show, remove", async () => {
    expect((await ok("POST", `/tokens/${id}/disable`, "/tokens/:id/disable", 200)).state).toBe("disabled");
    expect((await f.store.tokens.findById(id))!.state).toBe("disabled");
    expect((await ok("POST", `/tokens/${id}/enable`, "/tokens/:id/enable", 200)).state).toBe("active");
    expect((await ok("POST", `/tokens/${id}/assign`, "/tokens/:id/assign", 200, { user: null })).user).toBeNull();
    expect((await ok("POST", `/tokens/${id}/assign`, "/tokens/:id/assign", 200, { user: "TOM" })).user).toBe("tom");
    expect((await ok("GET", `/tokens/${id}`, "/tokens/:id", 200, undefined, f.keys.operator)).user).toBe("tom");
    await ok("DELETE", `/tokens/${id}`, "/tokens/:id", 204);
    expect(await status("GET", `/tokens/${id}`)).toBe(404);
  });

  test.each<[string, string, string, unknown, number]>([
    ["enrol for an unknown user", "POST", "/tokens", { user: "nobody" }, 404],
    ["secret too short", "POST", "/tokens", { user: "tom", secret: "JBSWY3DP" }, 400],
    ["secret not base32", "POST", "/tokens", { user: "tom", secret: "not base32!" }, 400],
    ["digits 7", "POST", "/tokens", { user: "tom", digits: 7 }, 400],
    ["counter on TOTP", "POST", "/tokens", { user: "tom", counter: 1 }, 400],
    ["period on HOTP", "POST", "/tokens", { user: "tom", kind: "hotp", period: 60 }, 400],
    ["bad id", "GET", "/tokens/abc", undefined, 400],
    ["unknown id", "POST", "/tokens/999999/disable", undefined, 404],
    ["assign to unknown user", "POST", "/tokens/1/assign", { user: "nobody" }, 404],
    ["list for unknown user", "GET", "/tokens?user=nobody", undefined, 404],
    ["import CSV with a key option", "POST", "/tokens/import", { format: "csv", content: "x", pskHex: "00" }, 400],
    ["import two key options", "POST", "/tokens/import", { format: "pskc", content: "x", pskHex: "00", password: "p" }, 400],
  ])("%s → %d", async (_what, method, path, body, expected) => {
    expect(await status(method, path, body)).toBe(expected);
  });

  test("CSV import assigns known owners, all or nothing", async () => {
    const content = "serial,secret_base32,user\nIMP0001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,tom\nIMP0002,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ,ghost\n";
    expect(await ok("POST", "/tokens/import", "/tokens/import", 201, { format: "csv", content })).toEqual({ imported: 2, assigned: 1, unknownOwners: 1 });
    expect(await status("POST", "/tokens/import", { format: "csv", content })).toBe(409);
    const listed = (await (await f.call("GET", "/tokens?serial=IMP0001", { key: f.keys.operator })).json()) as { user: string }[];
    expect(listed).toHaveLength(1);
    expect(listed[0]!.user).toBe("tom");
  });
});

describe("RADIUS clients", () => {
  const SECRET = "a-long-shared-secret-for-nas";
  test("add (secret accepted, never answered), show, list, remove", async () => {
    const r = await ok("POST", "/clients", "/clients", 201, { name: "vpn", address: "192.0.2.0/24", secret: SECRET, otpMode: "concat" });
    expect(r).toMatchObject({ client: { name: "vpn", address: "192.0.2.0/24", otpMode: "concat", firstFactor: "password", requireMessageAuthenticator: true }, warnings: [] });
    expect((await f.store.clients.findByName("vpn"))!.secret).toBe(SECRET);
    // The row ID, as `client list --json` prints it.
    expect(r.client.id).toBe((await f.store.clients.findByName("vpn"))!.id);
    for (const path of ["/clients", "/clients/vpn"]) {
      const text = await (await f.call("GET", path, { key: f.keys.operator })).text();
      expect(text).toContain("vpn");
      expect(text).not.toContain(SECRET);
    }
    await ok("DELETE", "/clients/vpn", "/clients/:name", 204);
    expect(await f.store.clients.findByName("vpn")).toBeUndefined();
  });

  test("a short secret and an optional Message-Authenticator are accepted with warnings", async () => {
    const r = await ok("POST", "/clients", "/clients", 201, { name: "legacy", address: "2001:db8::1", secret: "short", requireMessageAuthenticator: false });
    expect(r.client.address).toBe("2001:db8::1/128");
    expect(r.warnings).toHaveLength(2);
  });

  test.each<[string, unknown, number]>([
    ["bad CIDR", { name: "c1", address: "192.0.2.0/33", secret: SECRET }, 400],
    ["first factor none with password-only", { name: "c2", address: "192.0.2.1", secret: SECRET, firstFactor: "none", allowPasswordOnly: true }, 400],
    ["unknown directory", { name: "c3", address: "192.0.2.1", secret: SECRET, directories: ["corp"] }, 400],
    ["local twice", { name: "c4", address: "192.0.2.1", secret: SECRET, directories: ["local", "local"] }, 400],
    ["bad name", { name: "-x", address: "192.0.2.1", secret: SECRET }, 400],
    ["empty secret", { name: "c5", address: "192.0.2.1", secret: "" }, 400],
    ["duplicate", { name: "legacy", address: "192.0.2.1", secret: SECRET }, 409],
    ["exactly the network of another client", { name: "c6", address: "2001:db8:0:0::1/128", secret: SECRET }, 409],
  ])("%s → %d", async (_what, body, expected) => {
    expect(await status("POST", "/clients", body)).toBe(expected);
  });

  test("list and show say which client wins where networks overlap", async () => {
    await ok("POST", "/clients", "/clients", 201, { name: "site", address: "198.51.100.0/24", secret: SECRET });
    const added = await ok("POST", "/clients", "/clients", 201, { name: "fw", address: "198.51.100.7", secret: SECRET });
    expect(added.client).toMatchObject({ network: "198.51.100.7/32", overlaps: { shadows: ["site"], shadowedBy: [], duplicateOf: null, unreachable: false } });
    const list = await ok<any[]>("GET", "/clients", "/clients", 200, undefined, f.keys.operator);
    expect(list.find((c) => c.name === "site")).toMatchObject({ network: "198.51.100.0/24", overlaps: { shadows: [], shadowedBy: ["fw"], duplicateOf: null, unreachable: false } });
    expect(await ok("GET", "/clients/fw", "/clients/:name", 200)).toMatchObject({ overlaps: { shadows: ["site"] } });
    const r = await f.call("POST", "/clients", { key: f.keys.admin, body: { name: "fw2", address: "198.51.100.7/32", secret: "another-shared-secret" } });
    expect(r.status).toBe(409);
    const text = await r.text();
    expect(JSON.parse(text).message).toBe("client fw already has this network; a second client for it could never be matched");
    expect(text).not.toContain("another-shared-secret");
    await ok("DELETE", "/clients/fw", "/clients/:name", 204);
    await ok("DELETE", "/clients/site", "/clients/:name", 204);
  });

  test("directories [local] is stored in order", async () => {
    const r = await ok("POST", "/clients", "/clients", 201, { name: "loc", address: "192.0.2.9", secret: SECRET, directories: ["local"] });
    expect(r.client.directories).toEqual(["local"]);
  });

  test("remove unknown → 404", async () => {
    expect(await status("DELETE", "/clients/nothere")).toBe(404);
  });

  test("phone settings: given at add, changed by PATCH (audited with the fields), refused out of range or in combinations that cannot work", async () => {
    const r = await ok("POST", "/clients", "/clients", 201, { name: "ph", address: "192.0.2.50", secret: SECRET, approvalHoldS: 60, smsCodeLength: 8 });
    expect(r.client).toMatchObject({ approvalHoldS: 60, approvalMode: "hold", approvalNumberMatch: false, smsCodeLength: 8, smsCodeAlphabet: null });
    const patched = await ok("PATCH", "/clients/ph", "/clients/:name", 200, { approvalMode: "challenge", approvalNumberMatch: true, smsCodeAlphabet: "alphabetic", smsCodeLength: null });
    expect(patched).toMatchObject({ name: "ph", approvalHoldS: 60, approvalMode: "challenge", approvalNumberMatch: true, smsCodeLength: null, smsCodeAlphabet: "alphabetic" });
    expect(await f.store.clients.findByName("ph")).toMatchObject({ approvalMode: "challenge", approvalNumberMatch: true, smsCodeLength: null, smsCodeAlphabet: "alphabetic" });
    for (const [body, expected] of [
      [{ approvalHoldS: 121 }, 400],
      [{ approvalHoldS: 4 }, 400],
      [{ approvalMode: "hold" }, 400], // number matching stays on: it needs challenge mode
      [{ smsCodeLength: 3 }, 400],
      [{ smsCodeAlphabet: "hex" }, 400],
      [{ secret: "no" }, 400],
    ] as const) expect(await status("PATCH", "/clients/ph", body)).toBe(expected);
    expect(await status("PATCH", "/clients/nothere", { approvalHoldS: 30 })).toBe(404);
    expect(await status("POST", "/clients", { name: "cc", address: "192.0.2.51", secret: SECRET, otpMode: "concat", approvalMode: "challenge" })).toBe(400);
    expect(await status("POST", "/clients", { name: "nm", address: "192.0.2.52", secret: SECRET, approvalNumberMatch: true })).toBe(400);
    expect(await status("PATCH", "/clients/ph", { approvalHoldS: 30 }, f.keys.operator)).toBe(403);
  });
});

describe("API keys", () => {
  test("add shows the key once and stores only its hash; list never shows key or hash", async () => {
    const r = await ok("POST", "/apikeys", "/apikeys", 201, { name: "web1", endpoint: "from-file", expires: "2099-01-01" });
    expect(r.key).toMatch(/^pcl_[A-Za-z0-9_-]{43}$/);
    expect(r.apiKey).toMatchObject({ name: "web1", role: "magiclink", endpoint: "from-file", status: "active", expiresAt: "2099-01-02T00:00:00.000Z" });
    const stored = await f.store.apiKeys.findByName("web1");
    const text = await (await f.call("GET", "/apikeys", { key: f.keys.operator })).text();
    expect(text).toContain("web1");
    expect(text).not.toContain(r.key);
    expect(text).not.toContain(stored!.hash);
  });

  test.each<[string, unknown, number]>([
    ["unknown endpoint", { name: "k1", endpoint: "nope" }, 404],
    ["endpoint on an operator key", { name: "k2", role: "operator", endpoint: "default" }, 400],
    ["past expiry", { name: "k3", expires: "2000-01-01" }, 400],
    ["unknown role", { name: "k4", role: "superuser" }, 400],
    ["duplicate", { name: "web1" }, 409],
  ])("%s → %d", async (_what, body, expected) => {
    expect(await status("POST", "/apikeys", body)).toBe(expected);
  });

  test("disable, enable, remove; unknown → 404", async () => {
    expect((await ok("POST", "/apikeys/web1/disable", "/apikeys/:name/disable", 200)).status).toBe("disabled");
    expect((await ok("POST", "/apikeys/web1/enable", "/apikeys/:name/enable", 200)).status).toBe("active");
    await ok("DELETE", "/apikeys/web1", "/apikeys/:name", 204);
    expect(await status("DELETE", "/apikeys/web1")).toBe(404);
  });
});

describe("endpoint profiles", () => {
  test("default always listed first; put creates with defaults for unset keys; get; remove", async () => {
    const list = await ok<any[]>("GET", "/endpoints", "/endpoints", 200, undefined, f.keys.operator);
    expect(list[0]!.name).toBe("default");
    const put = await ok("PUT", "/endpoints/shop", "/endpoints/:name", 200, { title_text: "Shop sign-in", touch_timeout_s: 60, require_known_user: true, channels: ["sms"] });
    expect(put).toMatchObject({ name: "shop", declaredInConfig: false, title_text: "Shop sign-in", touch_timeout_s: 60, require_known_user: true, per_number_per_minute: 5, channels: ["sms"] });
    expect((await f.store.endpoints.get("shop"))!.touchTimeoutS).toBe(60);
    expect((await ok("GET", "/endpoints/shop", "/endpoints/:name", 200)).title_text).toBe("Shop sign-in");
    await ok("DELETE", "/endpoints/shop", "/endpoints/:name", 204);
    expect(await status("GET", "/endpoints/shop")).toBe(404);
  });

  test("patch changes the keys it names and keeps the others", async () => {
    await ok("PUT", "/endpoints/edit", "/endpoints/:name", 200, { title_text: "Before", touch_timeout_s: 60, per_number_per_minute: 3 });
    const patched = await ok("PATCH", "/endpoints/edit", "/endpoints/:name", 200, { title_text: "After", per_number_per_hour: 20 });
    expect(patched).toMatchObject({ name: "edit", title_text: "After", touch_timeout_s: 60, per_number_per_minute: 3, per_number_per_hour: 20 });
    expect(await status("PATCH", "/endpoints/edit", { touch_timeout_s: 5 })).toBe(400);
    expect(await status("PATCH", "/endpoints/edit", { colour: "red" })).toBe(400);
    expect(await status("PATCH", "/endpoints/edit", { title_text: "x" }, f.keys.operator)).toBe(403);
    expect(await status("PATCH", "/endpoints/nothere", { title_text: "x" })).toBe(404);
    expect(await status("PATCH", "/endpoints/from-file", { title_text: "x" })).toBe(409);
    expect((await f.store.endpoints.get("edit"))!.touchTimeoutS).toBe(60);
    await ok("DELETE", "/endpoints/edit", "/endpoints/:name", 204);
  });

  test.each<[string, string, string, unknown, number]>([
    ["timeout below 15 s", "PUT", "/endpoints/e1", { touch_timeout_s: 10 }, 400],
    ["empty text", "PUT", "/endpoints/e1", { title_text: "" }, 400],
    ["unknown key", "PUT", "/endpoints/e1", { colour: "red" }, 400],
    ["a channel the appliance does not deliver through", "PUT", "/endpoints/e1", { channels: ["sms", "pigeon"] }, 400],
    ["a profile declared in the file cannot be edited", "PUT", "/endpoints/from-file", {}, 409],
    ["nor removed", "DELETE", "/endpoints/from-file", undefined, 409],
    ["default is never removed", "DELETE", "/endpoints/default", undefined, 409],
    ["remove unknown", "DELETE", "/endpoints/nothere", undefined, 404],
  ])("%s → %d", async (_what, method, path, body, expected) => {
    const r = await f.call(method, path, { key: f.keys.admin, body });
    expect(r.status).toBe(expected);
    if (expected === 409) expect(((await r.json()) as { message: string }).message).toBeString();
  });

  test.each(["title_text", "authentication_text", "touch_accept_text", "touch_reject_text", "button_accept_text", "button_reject_text", "sms_text"])(
    "%s with a bidirectional override → 400 naming the field, never the value; nothing stored",
    async (field) => {
      const r = await f.call("PUT", "/endpoints/e1", { key: f.keys.admin, body: { [field]: "Secret-wording \u202e{link}" } });
      expect(r.status).toBe(400);
      const text = await r.text();
      expect((JSON.parse(text) as { issues: Array<{ path: string }> }).issues.map((i) => i.path)).toEqual([field]);
      expect(text).not.toContain("Secret-wording");
      expect(text).not.toMatch(/\u202e|\\u202e/i);
      expect(await f.store.endpoints.get("e1")).toBeUndefined();
    },
  );

  test("a new profile does not allow custom SMS text unless the body says so", async () => {
    expect((await ok("PUT", "/endpoints/e2", "/endpoints/:name", 200, {})).allow_custom_sms_text).toBe(false);
    expect((await ok("PUT", "/endpoints/e3", "/endpoints/:name", 200, { allow_custom_sms_text: true })).allow_custom_sms_text).toBe(true);
  });

  test("default can be edited when the file does not declare it", async () => {
    expect((await ok("PUT", "/endpoints/default", "/endpoints/:name", 200, { button_accept_text: "Yes" })).button_accept_text).toBe("Yes");
  });
});

describe("delivery", () => {
  test("without a dispatcher the test answers 503; the log comes from the store", async () => {
    expect(await status("POST", "/delivery/test", { msisdn: "+46701234567" })).toBe(503);
    expect(await ok("GET", "/delivery/log", "/delivery/log", 200)).toEqual([]);
  });

  test("the test message reaches a real HTTP SMS gateway; the log is masked; the per-key limit answers 429", async () => {
    const received: string[] = [];
    await using gateway = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        received.push(await req.text());
        return Response.json({ sid: `SM${received.length}` }, { status: 201 });
      },
    });
    const log = f.store.deliveryLog;
    const dispatcher = createDispatcher({
      channels: [createSmsHttpChannel({ url: `http://127.0.0.1:${gateway.port}/sms`, method: "POST", contentType: "form", body: "To={to}&Body={message}", timeoutMs: 2000 })],
      region: "",
      allowList: { countries: ["SE"], prefixes: [] },
      rateLimits: f.store.rateLimits,
      deliveryLog: log,
      now: () => NOW,
    });
    const app = buildAdminApp({ ...f.deps, delivery: { dispatcher, log } });
    const request = (method: string, path: string, body?: unknown) =>
      app.request(`/api/admin/v1${path}`, { method, headers: { "api-key": f.keys.admin, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const call = (body: unknown) => request("POST", "/delivery/test", body);
    const r = await call({ msisdn: "+46701234567" });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, channel: "sms", reason: null, detail: null });
    expect(received).toHaveLength(1);
    expect(decodeURIComponent(received[0]!.replace(/\+/g, " "))).toContain("To=+46701234567&Body=Portcullis test message");

    const refused = await call({ msisdn: "+12025550123" });
    expect(await refused.json()).toMatchObject({ ok: false, reason: "country_not_allowed" });
    expect(await (await call({})).status).toBe(400);
    expect((await call({ msisdn: "+46701234568" })).status).toBe(200);
    expect((await call({ msisdn: "+46701234569" })).status).toBe(200);
    const limited = await call({ msisdn: "+46701234560" });
    expect(limited.status).toBe(429);
    expect(received).toHaveLength(3);

    const entries = (await (await request("GET", "/delivery/log?limit=2")).json()) as { destination: string; result: string }[];
    expect(entries).toHaveLength(2);
    const all = JSON.stringify(await (await request("GET", "/delivery/log")).json());
    expect(all).not.toContain("46701234567");
    expect(all).not.toContain("Portcullis test message");
    expect(all).toContain('"result":"refused"');
  });
});

test("every spec path is under the admin base", () => {
  for (const s of specs) expect(`${ADMIN_BASE}${s.path}`).toStartWith("/api/admin/v1/");
});
