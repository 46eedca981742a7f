// Admin API key rotation (root only; refused cleanly when the key source cannot take a new key) and
// LDAP profile diagnostics (admin+, JSON findings, never the bind password), with their audit events.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import * as v from "valibot";
import type { AuditEvent } from "../../../../src/audit/events.ts";
import { registerAdminResources } from "../../../../src/http/admin/index.ts";
import { AdminRouter, type AdminRouteSpec } from "../../../../src/http/admin/route.ts";
import { buildAdminApp } from "../../../../src/http/app.ts";
import { generateApiKey } from "../../../../src/http/api-keys.ts";
import { cleanup, newToken, openIn, tempDir } from "../../store/helpers.ts";
import { testDeps } from "../helpers.ts";
import { adminFixture } from "./helpers.ts";

const BIND_PASSWORD = "svc-bind-Secret-4711";
const events: AuditEvent[] = [];
let f: Awaited<ReturnType<typeof adminFixture>>;
let specs: readonly AdminRouteSpec[];
let silent: Server;
let silentPort = 0;
const sockets = new Set<Socket>();

/** A free port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let refusedUrl = "";

beforeAll(async () => {
  // Accepts connections and never answers: every step must end at the profile's timeout.
  silent = createServer((sock) => void sockets.add(sock));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentPort = (silent.address() as { port: number }).port;
  refusedUrl = `ldap://127.0.0.1:${await closedPort()}`;
  f = await adminFixture({
    audit: (e) => void events.push(e),
    configPatch: (c) => {
      const base = {
        start_tls: false,
        plaintext: true,
        bind_dn: "cn=svc,dc=example,dc=com",
        bind_password: BIND_PASSWORD,
        base_dn: "dc=example,dc=com",
        user_filter: "(uid={username})",
        phone_attribute: "mobile",
        email_attribute: "mail",
        allow_type_password: false,
        required_groups: [],
        default_type: "totp",
        timeout_ms: 300,
        pool_size: 1,
        bind_pool_size: 1,
        reply: [],
      };
      c.ldap = [
        { ...base, name: "down", urls: [refusedUrl] },
        { ...base, name: "silent", urls: [`ldap://127.0.0.1:${silentPort}`] },
      ] as unknown as typeof c.ldap;
    },
  });
  const { Hono } = await import("hono");
  specs = registerAdminResources(new AdminRouter(new Hono(), f.deps));
});
afterAll(() => {
  for (const s of sockets) s.destroy();
  silent?.close();
  cleanup(f.dir);
});

const schemaOf = (method: string, path: string) => specs.find((s) => s.method === method && s.path === path)!.responses[200]!.schema!;

describe("POST /key/rotate", () => {
  test.each([
    ["operator", 403],
    ["admin", 403],
    ["magiclink", 403],
    ["disabled", 401],
  ] as const)("%s key → %d, nothing rotated", async (who, status) => {
    const before = events.length;
    const r = await f.call("POST", "/key/rotate", { key: f.keys[who] });
    expect(r.status).toBe(status);
    expect(events.length).toBe(before);
  });

  test("root: a new key ID and every seed and shared secret re-encrypted; the data still opens", async () => {
    await f.store.clients.add({ name: "nas", address: "192.0.2.1/32", secret: "nas-shared-secret-123", firstFactor: "password", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null });
    const t = await f.store.tokens.add(newToken("T-ROT-1"));
    const before = events.length;
    const r = await f.call("POST", "/key/rotate", { key: f.keys.root });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(v.safeParse(schemaOf("post", "/key/rotate"), body).success).toBe(true);
    expect(body).toEqual({ keyId: expect.any(String), resealed: 2 });
    expect(events.slice(before)).toEqual([{ type: "admin.key_rotated", keyId: body.keyId, resealed: 2, by: "k-root" }]);
    expect((await f.store.clients.findByName("nas"))!.secret).toBe("nas-shared-secret-123");
    expect((await f.store.tokens.findById(t.id))!.secret).toEqual(newToken("T-ROT-1").secret);
    // A second rotation yields another key.
    const again = (await (await f.call("POST", "/key/rotate", { key: f.keys.root })).json()) as any;
    expect(again.keyId).not.toBe(body.keyId);
  });

  test("a key from $PORTCULLIS_KEY cannot take a new key: 409 with a fixed message, nothing changed, no audit event", async () => {
    const dir = tempDir();
    const envKey = Buffer.alloc(32, 7).toString("base64");
    const store = await openIn(dir, { env: { PORTCULLIS_KEY: envKey } });
    try {
      const seen: AuditEvent[] = [];
      const t = await testDeps({ store, audit: (e) => void seen.push(e) });
      const g = generateApiKey(() => new Uint8Array(32).fill(9));
      await store.apiKeys.add({ name: "root", role: "root", endpoint: null, hash: g.hash, prefix: g.prefix, expiresAt: null });
      await store.clients.add({ name: "nas", address: "192.0.2.1/32", secret: "nas-shared-secret-123", firstFactor: "password", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null });
      const app = buildAdminApp(t.deps);
      const r = await app.request("/api/admin/v1/key/rotate", { method: "POST", headers: { "api-key": g.key } }, { remoteAddress: "127.0.0.1" });
      expect(r.status).toBe(409);
      const text = await r.text();
      expect(JSON.parse(text)).toMatchObject({ error: "conflict", message: expect.stringContaining("key file") });
      expect(text).not.toContain(envKey);
      expect(seen).toEqual([]);
      expect((await store.clients.findByName("nas"))!.secret).toBe("nas-shared-secret-123");
      cleanup(t.dir);
    } finally {
      store.close?.();
      cleanup(dir);
    }
  });
});

describe("POST /ldap/{name}/test", () => {
  test.each([
    ["operator", 403],
    ["magiclink", 403],
    ["expired", 401],
  ] as const)("%s key → %d", async (who, status) => {
    expect((await f.call("POST", "/ldap/down/test", { key: f.keys[who], body: {} })).status).toBe(status);
  });

  test("an unknown profile is 404 without its name; a bad name is 400 without the value", async () => {
    const r = await f.call("POST", "/ldap/nope-profile/test", { key: f.keys.admin });
    expect(r.status).toBe(404);
    expect(await r.text()).not.toContain("nope-profile");
    const bad = await f.call("POST", `/ldap/${encodeURIComponent(`${BIND_PASSWORD}!*`)}/test`, { key: f.keys.admin });
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toContain(BIND_PASSWORD);
    const extra = await f.call("POST", "/ldap/down/test", { key: f.keys.admin, body: { user: "alice", password: BIND_PASSWORD } });
    expect(extra.status).toBe(400);
    expect(await extra.text()).not.toContain(BIND_PASSWORD);
  });

  test("a refused URL: 200 with ok false, the URL unreachable (ECONNREFUSED), the user lookup failed; never the bind password", async () => {
    const before = events.length;
    const r = await f.call("POST", "/ldap/down/test", { key: f.keys.admin, body: { user: "alice" } });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain(BIND_PASSWORD);
    const body = JSON.parse(text);
    expect(v.safeParse(schemaOf("post", "/ldap/:name/test"), body).success).toBe(true);
    expect(body).toMatchObject({
      profile: { name: "down", bindDN: "cn=svc,dc=example,dc=com", timeoutMs: 300, caFile: null },
      ok: false,
      error: null,
      urls: [{ url: refusedUrl, transport: "plain", reachable: false, error: "ECONNREFUSED", connectMs: null, tls: null, serviceBind: null }],
      user: { query: "alice", found: false, refused: true, error: expect.any(String) },
    });
    expect(events.slice(before)).toEqual([{ type: "admin.ldap_tested", profile: "down", ok: false, by: "k-admin" }]);
  });

  test("without a body (or user) only the URLs are tested; a silent server ends at the profile timeout", async () => {
    const r = await f.call("POST", "/ldap/silent/test", { key: f.keys.root });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(body.user).toBeUndefined();
    expect(body.ok).toBe(false);
    expect(body.urls).toHaveLength(1);
    // Reachable over TCP, but the bind never answers: a failed bind, not a hang.
    const [u] = body.urls;
    expect(u.reachable && u.serviceBind?.ok === true).toBe(false);
    expect(JSON.stringify(body)).not.toContain(BIND_PASSWORD);
  });

  test("no log line holds the bind password", () => {
    expect(JSON.stringify(f.logs)).not.toContain(BIND_PASSWORD);
    expect(JSON.stringify(events)).not.toContain(BIND_PASSWORD);
  });
});
