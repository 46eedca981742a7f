// The OpenAPI document: served on the admin app, valid OpenAPI 3.1 structure, and listing every
// registered admin route (so the document cannot drift from the routes).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADMIN_BASE } from "../../../../src/http/admin/route.ts";
import { buildPublicApp } from "../../../../src/http/app.ts";
import { OPENAPI_PATH, openAPIPath } from "../../../../src/http/openapi.ts";
import { cleanup } from "../../store/helpers.ts";
import { adminFixture } from "./helpers.ts";

let f: Awaited<ReturnType<typeof adminFixture>>;
let doc: any;
beforeAll(async () => {
  f = await adminFixture();
  const r = await f.app.request(OPENAPI_PATH);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toStartWith("application/json");
  doc = JSON.parse(await r.text());
});
afterAll(() => cleanup(f.dir));

const METHODS = ["get", "post", "put", "patch", "delete"];

describe("OpenAPI document", () => {
  test("every admin route registered on the app is documented, and nothing else", () => {
    const registered = new Set(
      f.app.routes.filter((r) => r.path.startsWith(`${ADMIN_BASE}/`) && METHODS.includes(r.method.toLowerCase())).map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`),
    );
    const documented = new Set(Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)));
    expect(registered.size).toBeGreaterThan(25);
    expect([...registered].sort()).toEqual([...documented].sort());
  });

  test("OpenAPI 3.1 with security schemes for the api-key header and Bearer", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBeString();
    expect(doc.components.securitySchemes).toEqual({ apiKey: { type: "apiKey", in: "header", name: "api-key" }, bearer: { type: "http", scheme: "bearer" } });
    expect(doc.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
  });

  test.each([
    ["post", "/users", "username"],
    ["post", "/tokens", "user"],
    ["post", "/clients", "secret"],
    ["put", "/endpoints/{name}", "touch_timeout_s"],
    ["post", "/delivery/test", "msisdn"],
  ])("%s %s has a JSON request schema with %s", (method, path, property) => {
    const op = doc.paths[`${ADMIN_BASE}${path}`][method];
    const schema = op.requestBody.content["application/json"].schema;
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties)).toContain(property);
  });

  test("every operation: summary, tag, role, success and error responses; path parameters declared", () => {
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(ops)) {
        expect(op.summary).toBeString();
        expect(op.tags).toHaveLength(1);
        expect(["operator", "admin", "root"]).toContain(op["x-min-role"]);
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => s.startsWith("2"))).toBe(true);
        expect(statuses).toEqual(expect.arrayContaining(["400", "401", "403"]));
        for (const s of statuses.filter((x) => !x.startsWith("2"))) expect(doc.components.responses[op.responses[s].$ref.split("/").pop()]).toBeDefined();
        const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        expect(op.parameters.filter((p: any) => p.in === "path").map((p: any) => p.name)).toEqual(names);
      }
    }
  });

  test("operation IDs are unique; GET is operator, every write but unlock needs admin or more", () => {
    const ops = Object.values(doc.paths as Record<string, Record<string, any>>).flatMap((o) => Object.entries(o));
    const ids = ops.map(([, op]) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [path, o] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(o)) {
        // Operators are read-only plus unlock (admin/audit.ts LEAST_ROLE).
        if (method === "get") continue;
        if (path.endsWith("/unlock")) expect(op["x-min-role"]).toBe("operator");
        else expect(op["x-min-role"]).not.toBe("operator");
      }
    }
  });

  test("responses never document a password hash, seed or key hash field", () => {
    const text = JSON.stringify(Object.values(doc.paths).map((o: any) => Object.values(o).map((op: any) => op.responses)));
    for (const field of ['"passwordHash"', '"hash"', '"secret"']) expect(text).not.toContain(field);
  });

  test("openAPIPath converts Hono parameters", () => {
    expect(openAPIPath("/tokens/:id/resync")).toBe(`${ADMIN_BASE}/tokens/{id}/resync`);
  });

  test("the public app has neither the document nor the admin API", async () => {
    const pub = buildPublicApp(f.deps);
    expect((await pub.request(OPENAPI_PATH)).status).toBe(404);
    expect((await pub.request(`${ADMIN_BASE}/users`, { headers: { "api-key": f.keys.root } })).status).toBe(404);
  });
});
