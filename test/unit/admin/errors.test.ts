// The admin operations' one error type and where it ends: each code becomes one HTTP status in the
// admin app's error handler (store failures too: unavailable → 503), and one CLI line and exit code.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AdminError, invalid, type AdminErrorCode } from "../../../src/admin/errors.ts";
import { cliError } from "../../../src/cli/context.ts";
import { ADMIN_ERROR_STATUS } from "../../../src/http/admin/errors.ts";
import { buildAdminApp } from "../../../src/http/app.ts";
import type { RouteModule } from "../../../src/http/types.ts";
import { describeError } from "../../../src/main.ts";
import { StoreError, type StoreErrorCode } from "../../../src/store/types.ts";
import { testDeps } from "../http/helpers.ts";
import { cleanup } from "../store/helpers.ts";

let thrown: unknown;
/** One admin route that throws whatever the test put in `thrown`. */
const throwing: RouteModule = (app) => {
  app.get("/boom", () => {
    throw thrown;
  });
};

let t: Awaited<ReturnType<typeof testDeps>>;
let app: ReturnType<typeof buildAdminApp>;
beforeAll(async () => {
  t = await testDeps();
  app = buildAdminApp(t.deps, [throwing]);
});
afterAll(() => cleanup(t.dir));

async function answer(err: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  thrown = err;
  const r = await app.request("/boom", {}, { remoteAddress: "127.0.0.1" });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe("admin app error handler", () => {
  test.each([
    ["invalid", 400, "bad_request"],
    ["forbidden", 403, "forbidden"],
    ["not_found", 404, "not_found"],
    ["conflict", 409, "conflict"],
    ["rate_limited", 429, "too_many_requests"],
    ["unavailable", 503, "unavailable"],
  ] as const)("AdminError %s → %d", async (code, status, error) => {
    expect(ADMIN_ERROR_STATUS[code as AdminErrorCode]).toBe(status);
    const { status: got, body } = await answer(new AdminError(code, "no user named secret-looking-input"));
    expect(got).toBe(status);
    expect(body.error).toBe(error);
    // The message may name what was asked for: only `expose` reaches the wire.
    expect(JSON.stringify(body)).not.toContain("secret-looking-input");
  });

  test("invalid answers the field and the rule, never the value", async () => {
    const { status, body } = await answer(invalid("phone", "must be a valid phone number"));
    expect(status).toBe(400);
    expect(body.issues).toEqual([{ path: "phone", expected: "must be a valid phone number" }]);
  });

  test("a conflict with a fixed explanation answers it as `message`", async () => {
    const { status, body } = await answer(new AdminError("conflict", "user alice already exists", { field: "username", expose: "a user with this name exists" }));
    expect(status).toBe(409);
    expect(body.message).toBe("a user with this name exists");
    expect(JSON.stringify(body)).not.toContain("alice");
  });

  test.each([
    ["unavailable", 503],
    ["conflict", 409],
    ["network_taken", 409],
    ["not_found", 404],
    ["key_missing", 500],
    ["corrupt", 500],
  ] as const)("StoreError %s → %d, without the store's message", async (code, status) => {
    const { status: got, body } = await answer(new StoreError(code as StoreErrorCode, "database is locked at /var/lib/portcullis/portcullis.db"));
    expect(got).toBe(status);
    expect(JSON.stringify(body)).not.toContain("/var/lib");
  });

  test("a 5xx is logged by name and code, never by message", async () => {
    t.logs.length = 0;
    await answer(new StoreError("unavailable", "database is locked at /var/lib/x"));
    expect(t.logs).toEqual([["error", "http.error", expect.objectContaining({ error: "StoreError", code: "unavailable" })]]);
    expect(JSON.stringify(t.logs)).not.toContain("/var/lib");
  });

  test("anything else is still a 500", async () => {
    expect((await answer(new RangeError("x"))).status).toBe(500);
  });
});

describe("CLI rendering", () => {
  test("fields become option names; invalid exits 2, the rest 1", () => {
    expect(cliError(invalid("allowPasswordOnly", "must be true or false")).message).toBe("--allow-password-only must be true or false");
    expect(cliError(invalid("username", "must not be empty")).message).toBe("NAME must not be empty");
    expect(cliError(invalid("approvalHoldS", "must be 5-120 seconds")).exitCode).toBe(2);
    const notFound = new AdminError("not_found", "no user named bob");
    expect(describeError(notFound)).toEqual({ message: "no user named bob", exitCode: 1 });
    expect(describeError(new AdminError("invalid", "{firstFactor} none cannot be combined with {allowPasswordOnly} true"))).toEqual({
      message: "--first-factor none cannot be combined with --allow-password-only true",
      exitCode: 2,
    });
  });

  test("the plain message names the fields as they are", () => {
    expect(new AdminError("invalid", "{firstFactor} none cannot be combined with {allowPasswordOnly} true").message).toBe("firstFactor none cannot be combined with allowPasswordOnly true");
  });
});
