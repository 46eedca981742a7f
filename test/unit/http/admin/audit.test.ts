// Admin API audit events: every change emits a typed admin.* event naming the calling key and the
// target, and no event carries a password, seed, shared secret or API key.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AuditEvent } from "../../../../src/audit/events.ts";
import { createDispatcher } from "../../../../src/delivery/dispatcher.ts";
import { cleanup } from "../../store/helpers.ts";
import { adminFixture } from "./helpers.ts";

const events: AuditEvent[] = [];
let f: Awaited<ReturnType<typeof adminFixture>>;
let tokenId = 0;
let createdKey = "";
let tokenSecret = "";
const PASSWORD = "tom-password-9f3a";
const NEW_PASSWORD = "tom-password-new-77";
const SHARED_SECRET = "shared-secret-0123456789abcdef";

beforeAll(async () => {
  f = await adminFixture({ audit: (e) => void events.push(e) });
  f.deps.delivery = {
    dispatcher: createDispatcher({ channels: [], region: "SE", allowList: { countries: ["SE"], prefixes: [] }, rateLimits: f.store.rateLimits, deliveryLog: f.store.deliveryLog, now: f.deps.now }),
    log: f.store.deliveryLog,
  };
});
afterAll(() => cleanup(f.dir));

/** Calls with the admin key (named k-admin), expects a 2xx, and returns the events it emitted. */
async function change(method: string, path: string, body?: unknown): Promise<{ json: any; emitted: AuditEvent[] }> {
  const before = events.length;
  const r = await f.call(method, path, { key: f.keys.admin, body });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return { json: text ? JSON.parse(text) : undefined, emitted: events.slice(before) };
}

describe("admin.* audit events", () => {
  test("users: add, update (field names only), unlock, remove", async () => {
    expect((await change("POST", "/users", { username: "tom", password: PASSWORD, phone: "+46701234567" })).emitted).toEqual([{ type: "admin.user_added", user: "tom", by: "k-admin" }]);
    expect((await change("PATCH", "/users/tom", { password: NEW_PASSWORD, disabled: true })).emitted).toEqual([
      { type: "admin.user_updated", user: "tom", fields: expect.arrayContaining(["password", "disabled"]), by: "k-admin" },
    ]);
    expect((await change("POST", "/users/tom/unlock")).emitted).toEqual([{ type: "admin.user_unlocked", user: "tom", cleared: expect.any(Boolean), by: "k-admin" }]);
  });

  test("tokens: enrol, disable, enable, assign, remove", async () => {
    const enrol = await change("POST", "/tokens", { user: "tom" });
    tokenId = enrol.json.token.id;
    tokenSecret = new URL(enrol.json.otpauthUri).searchParams.get("secret") ?? "";
    expect(tokenSecret.length).toBeGreaterThanOrEqual(16);
    expect(typeof tokenId).toBe("number");
    expect(enrol.emitted).toEqual([{ type: "admin.token_enrolled", user: "tom", token: tokenId, kind: "totp", by: "k-admin" }]);
    expect((await change("POST", `/tokens/${tokenId}/disable`)).emitted).toEqual([{ type: "admin.token_state", token: tokenId, state: "disabled", by: "k-admin" }]);
    expect((await change("POST", `/tokens/${tokenId}/enable`)).emitted).toEqual([{ type: "admin.token_state", token: tokenId, state: "active", by: "k-admin" }]);
    expect((await change("POST", `/tokens/${tokenId}/assign`, { user: null })).emitted).toEqual([{ type: "admin.token_assigned", token: tokenId, user: null, by: "k-admin" }]);
    expect((await change("DELETE", `/tokens/${tokenId}`)).emitted).toEqual([{ type: "admin.token_removed", token: tokenId, by: "k-admin" }]);
  });

  test("RADIUS clients: add, phone settings changed (field names; nothing when nothing changed), remove, never the shared secret", async () => {
    expect((await change("POST", "/clients", { name: "vpn", address: "192.0.2.0/24", secret: SHARED_SECRET })).emitted).toEqual([
      { type: "admin.client_added", client: "vpn", address: "192.0.2.0/24", by: "k-admin" },
    ]);
    expect((await change("PATCH", "/clients/vpn", { approvalHoldS: 60, smsCodeAlphabet: "alphanumeric" })).emitted).toEqual([
      { type: "admin.client_updated", client: "vpn", fields: ["approvalHoldS", "smsCodeAlphabet"], by: "k-admin" },
    ]);
    expect((await change("PATCH", "/clients/vpn", { approvalHoldS: 60 })).emitted).toEqual([]);
    expect((await change("DELETE", "/clients/vpn")).emitted).toEqual([{ type: "admin.client_removed", client: "vpn", by: "k-admin" }]);
  });

  test("API keys: created, disabled, enabled, removed (root only), never the key", async () => {
    const before = events.length;
    const r = await f.call("POST", "/apikeys", { key: f.keys.root, body: { name: "web-app" } });
    expect(r.status).toBe(201);
    createdKey = ((await r.json()) as { key: string }).key;
    expect(events.slice(before)).toEqual([{ type: "admin.apikey_added", apikey: "web-app", role: "magiclink", by: "k-root" }]);
    for (const [action, disabled] of [["disable", true], ["enable", false]] as const) {
      const n = events.length;
      expect((await f.call("POST", `/apikeys/web-app/${action}`, { key: f.keys.root })).status).toBe(200);
      expect(events.slice(n)).toEqual([{ type: "admin.apikey_state", apikey: "web-app", disabled, by: "k-root" }]);
    }
    const n = events.length;
    expect((await f.call("DELETE", "/apikeys/web-app", { key: f.keys.root })).status).toBe(204);
    expect(events.slice(n)).toEqual([{ type: "admin.apikey_removed", apikey: "web-app", by: "k-root" }]);
  });

  test("endpoint profiles: put and remove", async () => {
    expect((await change("PUT", "/endpoints/shop", {})).emitted).toEqual([{ type: "admin.endpoint_put", endpoint: "shop", by: "k-admin" }]);
    expect((await change("DELETE", "/endpoints/shop")).emitted).toEqual([{ type: "admin.endpoint_removed", endpoint: "shop", by: "k-admin" }]);
  });

  test("delivery test: the outcome, not the number", async () => {
    const { emitted } = await change("POST", "/delivery/test", { msisdn: "+46701234567" });
    expect(emitted).toEqual([{ type: "admin.delivery_test", ok: false, reason: "all_channels_failed", by: "k-admin" }]);
  });

  test("users: remove", async () => {
    expect((await change("DELETE", "/users/tom")).emitted).toEqual([{ type: "admin.user_removed", user: "tom", by: "k-admin" }]);
  });

  test("a read emits nothing; a refused change emits nothing", async () => {
    const n = events.length;
    expect((await f.call("GET", "/users", { key: f.keys.operator })).status).toBe(200);
    expect((await f.call("POST", "/users", { key: f.keys.operator, body: { username: "eve" } })).status).toBe(403);
    expect(events.length).toBe(n);
  });

  test("no event holds a password, shared secret, seed, API key or the full number", () => {
    const text = JSON.stringify(events);
    expect(createdKey.length).toBeGreaterThan(20);
    const secrets: string[] = [PASSWORD, NEW_PASSWORD, SHARED_SECRET, createdKey, f.keys.admin, f.keys.root, "46701234567"];
    secrets.push(tokenSecret);
    for (const s of secrets) expect(text).not.toContain(s);
  });
});
