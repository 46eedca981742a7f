// The two apps through app.request(): health on both, /metrics and admin routes only on the admin app.

import { afterEach, describe, expect, test } from "bun:test";
import { buildAdminApp, buildPublicApp } from "../../../src/http/app.ts";
import type { HttpDeps, RouteModule } from "../../../src/http/types.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup } from "../store/helpers.ts";
import { testDeps } from "./helpers.ts";

let store: SqliteStore | undefined;
let dir: string | undefined;
afterEach(async () => {
  await store?.close();
  cleanup(dir);
});

async function deps(patch: Partial<HttpDeps> = {}): Promise<HttpDeps> {
  const t = await testDeps(patch);
  store = t.store;
  dir = t.dir;
  return t.deps;
}

const adminRoute: RouteModule = (app) => app.get("/api/admin/v1/users", (c) => c.json([]));
const publicRoute: RouteModule = (app) => app.get("/api/sfwa/auth", (c) => c.json({ code: "BAD_REQUEST" }));

describe("both listeners", () => {
  test.each(["public", "admin"] as const)("%s: /healthz 200, /readyz follows readiness", async (which) => {
    let ok = true;
    const d = await deps({ ready: async () => ({ ok, checks: { store_writable: ok, radius_bound: true } }) });
    const app = which === "public" ? buildPublicApp(d, []) : buildAdminApp(d, []);
    expect(await (await app.request("/healthz")).json()).toEqual({ status: "ok" });
    let r = await app.request("/readyz");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ready", checks: { store_writable: true, radius_bound: true } });
    ok = false;
    r = await app.request("/readyz");
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ status: "not_ready", checks: { store_writable: false, radius_bound: true } });
  });

  test("a readiness probe that throws is not ready", async () => {
    const d = await deps({
      ready: async () => {
        throw new Error("store gone");
      },
    });
    expect((await buildPublicApp(d, []).request("/readyz")).status).toBe(503);
  });
});

describe("separation", () => {
  test.each(["/metrics", "/api/admin/v1/users"])("%s is 404 on the public app and served on the admin app", async (path) => {
    const d = await deps();
    const pub = buildPublicApp(d, [publicRoute]);
    const adm = buildAdminApp(d, [adminRoute]);
    const r = await pub.request(path);
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: "not_found" });
    expect((await adm.request(path)).status).toBe(200);
  });

  test("the default route lists mount nothing of the admin API on the public app", async () => {
    const d = await deps();
    expect((await buildPublicApp(d).request("/api/admin/v1/users")).status).toBe(404);
    expect((await buildPublicApp(d).request("/api/openapi.json")).status).toBe(404);
  });

  test("/metrics: exposition content type, request counter by listener", async () => {
    const d = await deps();
    const pub = buildPublicApp(d, [publicRoute]);
    const adm = buildAdminApp(d, []);
    await pub.request("/api/sfwa/auth");
    await pub.request("/nope");
    const r = await adm.request("/metrics");
    expect(r.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await r.text();
    expect(text).toContain('portcullis_http_requests_total{listener="public",status="2xx"} 1');
    expect(text).toContain('portcullis_http_requests_total{listener="public",status="4xx"} 1');
    expect(text).toContain("# TYPE portcullis_magiclink_outcomes_total counter");
  });

  test("HSTS only where the listener speaks TLS", async () => {
    const d = await deps();
    expect((await buildPublicApp({ ...d, tls: true }, []).request("/healthz")).headers.get("Strict-Transport-Security")).toBe("max-age=31536000");
    expect((await buildAdminApp({ ...d, tls: false }, []).request("/healthz")).headers.get("Strict-Transport-Security")).toBeNull();
  });
});
