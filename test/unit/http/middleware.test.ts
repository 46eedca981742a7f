// HTTP middleware through app.request() (no socket): client address, security headers, request IDs,
// JSON errors and validation failures that never echo input, API-key authentication.

import { vValidator } from "@hono/valibot-validator";
import { afterEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import * as v from "valibot";
import { generateApiKey } from "../../../src/http/api-keys.ts";
import { apiKeyAuth, clientIp, CSP, jsonErrors, requestId, resolveClientIp, securityHeaders, validationHook } from "../../../src/http/middleware.ts";
import type { HttpEnv } from "../../../src/http/types.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { parseCIDR } from "../../../src/util/cidr.ts";
import { cleanup } from "../store/helpers.ts";
import { countingRandom, testDeps } from "./helpers.ts";

const nets = (...cidrs: string[]) => cidrs.map((c) => parseCIDR(c)!);

describe("resolveClientIp", () => {
  const trusted = nets("10.0.0.0/8", "2001:db8::/32");
  test.each([
    ["no header: the peer", "192.0.2.7", undefined, trusted, "192.0.2.7"],
    ["header from an untrusted peer is ignored", "192.0.2.7", "198.51.100.1", trusted, "192.0.2.7"],
    ["no trusted proxies configured: ignored", "10.0.0.1", "198.51.100.1", [], "10.0.0.1"],
    ["one trusted proxy: the header's last hop", "10.0.0.1", "198.51.100.1", trusted, "198.51.100.1"],
    ["rightmost untrusted hop wins over a spoofed leftmost", "10.0.0.1", "203.0.113.66, 198.51.100.1", trusted, "198.51.100.1"],
    ["chain of trusted proxies is skipped", "10.0.0.1", "203.0.113.66, 198.51.100.1, 10.1.1.1, 10.2.2.2", trusted, "198.51.100.1"],
    ["all hops trusted: the leftmost", "10.0.0.1", "10.9.9.9, 10.2.2.2", trusted, "10.9.9.9"],
    ["a malformed hop stops at the last trusted one", "10.0.0.1", "198.51.100.1, not-an-ip", trusted, "10.0.0.1"],
    ["a malformed hop behind an untrusted one is never reached", "10.0.0.1", "<script>, 198.51.100.1", trusted, "198.51.100.1"],
    ["IPv4-mapped peer is matched as IPv4", "::ffff:10.0.0.1", "198.51.100.1", trusted, "198.51.100.1"],
    ["IPv6 proxy and client", "2001:db8::1", "2001:db8:1::5, 2a00:1450::1", trusted, "2a00:1450::1"],
    ["a hop with a port", "10.0.0.1", "198.51.100.1:4711", trusted, "198.51.100.1"],
    ["a bracketed IPv6 hop with a port", "10.0.0.1", "[2a00:1450::1]:443", trusted, "2a00:1450::1"],
  ] as const)("%s", (_what, peer, header, trust, expected) => {
    expect(resolveClientIp(peer, header, trust)).toBe(expected);
  });

  test("clientIp middleware refuses a bad trusted_proxies entry at construction", () => {
    expect(() => clientIp(["10.0.0.0/33"])).toThrow(TypeError);
  });

  test("clientIp reads the socket peer from c.env and the header", async () => {
    const app = new Hono<HttpEnv>();
    app.use(clientIp(["10.0.0.0/8"]));
    app.get("/", (c) => c.text(c.get("clientIp")));
    const r = await app.request("/", { headers: { "X-Forwarded-For": "203.0.113.5" } }, { remoteAddress: "10.1.2.3" });
    expect(await r.text()).toBe("203.0.113.5");
    const direct = await app.request("/", { headers: { "X-Forwarded-For": "203.0.113.5" } }, { remoteAddress: "192.0.2.1" });
    expect(await direct.text()).toBe("192.0.2.1");
  });
});

function appWith(tls: boolean) {
  const app = new Hono<HttpEnv>();
  const errors = jsonErrors(() => {});
  app.onError(errors.onError);
  app.notFound(errors.notFound);
  app.use(requestId(countingRandom()));
  app.use(securityHeaders({ tls }));
  app.get("/ok", (c) => c.json({ ok: true }));
  app.get("/cached", (c) => c.text("x", 200, { "Cache-Control": "public, max-age=60" }));
  app.get("/boom", () => {
    throw new Error("secret-password-123 in a message");
  });
  app.get("/teapot", () => {
    throw new HTTPException(403, { message: "user typed hunter2" });
  });
  return app;
}

describe("security headers and request IDs", () => {
  test.each([
    [true, "max-age=31536000"],
    [false, null],
  ])("tls=%p: headers on every response, HSTS %p", async (tls, hsts) => {
    const app = appWith(tls);
    for (const path of ["/ok", "/missing", "/boom"]) {
      const r = await app.request(path);
      expect(r.headers.get("Content-Security-Policy")).toBe(CSP);
      expect(CSP).toContain("default-src 'self'");
      expect(CSP).toContain("frame-ancestors 'none'");
      expect(r.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(r.headers.get("Referrer-Policy")).toBe("no-referrer");
      expect(r.headers.get("X-Frame-Options")).toBe("DENY");
      expect(r.headers.get("Strict-Transport-Security")).toBe(hsts);
      expect(r.headers.get("Cache-Control")).toBe("no-store");
      expect(r.headers.get("X-Request-Id")).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  test("a handler's own cache policy is kept", async () => {
    expect((await appWith(true).request("/cached")).headers.get("Cache-Control")).toBe("public, max-age=60");
  });

  test("a handler's own (stricter) CSP is kept; every other answer gets the default", async () => {
    const app = appWith(true);
    app.get("/strict", (c) => c.text("x", 200, { "Content-Security-Policy": "default-src 'none'" }));
    expect((await app.request("/strict")).headers.get("Content-Security-Policy")).toBe("default-src 'none'");
    expect((await app.request("/ok")).headers.get("Content-Security-Policy")).toBe(CSP);
  });

  test("request IDs differ and an incoming X-Request-Id is not trusted", async () => {
    const app = appWith(true);
    const a = await app.request("/ok", { headers: { "X-Request-Id": "attacker-chosen" } });
    const b = await app.request("/ok");
    expect(a.headers.get("X-Request-Id")).not.toBe("attacker-chosen");
    expect(a.headers.get("X-Request-Id")).not.toBe(b.headers.get("X-Request-Id"));
  });
});

describe("JSON errors", () => {
  test.each([
    ["/missing?password=hunter2", 404, "not_found"],
    ["/boom", 500, "internal_error"],
    ["/teapot", 403, "forbidden"],
  ])("%s → %d %s, body without input or messages", async (path, status, error) => {
    const r = await appWith(true).request(path);
    expect(r.status).toBe(status);
    const text = await r.text();
    expect(JSON.parse(text)).toEqual({ error, requestId: r.headers.get("X-Request-Id") });
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("secret-password");
  });
});

describe("validationHook", () => {
  const schema = v.object({ name: v.pipe(v.string(), v.maxLength(5)), code: v.pipe(v.string(), v.regex(/^\d{6}$/)) });

  test("default: 400 with paths and expectations, never the received values", async () => {
    const app = new Hono<HttpEnv>();
    app.post("/x", vValidator("json", schema, validationHook()), (c) => c.json(c.req.valid("json")));
    const r = await app.request("/x", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "hunter2-long", code: "s3cr3t-code" }) });
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("s3cr3t");
    const body = JSON.parse(text);
    expect(body.error).toBe("bad_request");
    expect(body.issues.map((i: { path: string }) => i.path)).toEqual(["name", "code"]);
  });

  test("custom responder: Magic Link answers 200 BAD_REQUEST", async () => {
    const app = new Hono<HttpEnv>();
    app.get("/auth", vValidator("query", v.object({ msisdn: v.pipe(v.string(), v.regex(/^\+\d+$/)) }), validationHook((c) => c.json({ code: "BAD_REQUEST" }, 200))), (c) => c.text("ok"));
    const r = await app.request("/auth?msisdn=hunter2");
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('{"code":"BAD_REQUEST"}');
  });
});

describe("apiKeyAuth", () => {
  let store: SqliteStore | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await store?.close();
    cleanup(dir);
  });

  const NOW = 1_700_000_000_000;

  async function setup() {
    const t = await testDeps();
    store = t.store;
    dir = t.dir;
    const rnd = countingRandom();
    const keys: Record<string, string> = {};
    for (const [name, role, expiresAt, disabled] of [
      ["ml", "magiclink", null, false],
      ["ops", "operator", null, false],
      ["adm", "admin", null, false],
      ["old", "admin", NOW, false],
      ["off", "admin", null, true],
    ] as const) {
      const g = generateApiKey(rnd);
      keys[name] = g.key;
      await store.apiKeys.add({ name, role, endpoint: null, hash: g.hash, prefix: g.prefix, expiresAt, disabled });
    }
    const app = new Hono<HttpEnv>();
    const errors = jsonErrors(() => {});
    app.onError(errors.onError);
    app.use("/admin/*", apiKeyAuth({ store, roles: ["admin", "root"], now: () => NOW }));
    app.use("/ml/*", apiKeyAuth({ store, roles: ["magiclink"], now: () => NOW, onFail: (c) => c.json({ code: "BAD_REQUEST" }, 200) }));
    app.get("/admin/who", (c) => c.text(c.get("apiKey").name));
    app.get("/ml/who", (c) => c.text(c.get("apiKey").name));
    return { app, keys };
  }

  test.each([
    ["admin key on admin", "/admin/who", "adm", 200, "adm"],
    ["magiclink key on magiclink", "/ml/who", "ml", 200, "ml"],
    ["operator key lacks the role", "/admin/who", "ops", 401, '{"error":"unauthorized"'],
    ["magiclink key on admin", "/admin/who", "ml", 401, '{"error":"unauthorized"'],
    ["admin key on magiclink: BAD_REQUEST with 200", "/ml/who", "adm", 200, '{"code":"BAD_REQUEST"}'],
    ["expired (at its expiry instant)", "/admin/who", "old", 401, '{"error":"unauthorized"'],
    ["disabled", "/admin/who", "off", 401, '{"error":"unauthorized"'],
    ["unknown key", "/admin/who", "pcl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401, '{"error":"unauthorized"'],
    ["no key", "/admin/who", "", 401, '{"error":"unauthorized"'],
    ["no key on magiclink", "/ml/who", "", 200, '{"code":"BAD_REQUEST"}'],
  ])("%s", async (_what, path, keyName, status, bodyStart) => {
    const { app, keys } = await setup();
    const key = keys[keyName] ?? keyName;
    const r = await app.request(path, { headers: key ? { "api-key": key } : {} });
    expect(r.status).toBe(status);
    const text = await r.text();
    expect(text.startsWith(bodyStart)).toBe(true);
    if (key) expect(text).not.toContain(key);
  });

  test("Authorization: Bearer works too, and a use is recorded", async () => {
    const { app, keys } = await setup();
    const r = await app.request("/admin/who", { headers: { Authorization: `Bearer ${keys.adm}` } });
    expect(await r.text()).toBe("adm");
    await sleep(0);
    expect((await store!.apiKeys.findByName("adm"))!.lastUsedAt).toBe(NOW);
  });
});
