// Admin API POST /users/{name}/enrol-link: a single-use sign-in link to the self-service portal
// (admin role, 409 while the portal is off or without public_url), audited without the code.

import { afterEach, expect, test } from "bun:test";
import type { AuditEvent } from "../../../../src/audit/events.ts";
import type { Config } from "../../../../src/config/index.ts";
import { cleanup, newUser } from "../../store/helpers.ts";
import { adminFixture } from "./helpers.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function fixture(configPatch: (c: Config) => void) {
  const events: AuditEvent[] = [];
  const f = await adminFixture({ audit: (e) => void events.push(e), configPatch });
  cleanups.push(async () => {
    await f.store.close();
    cleanup(f.dir);
  });
  await f.store.users.add(newUser("alice"));
  return { ...f, events };
}

test("an admin key gets the link, its QR code and expiry once; audited without the code", async () => {
  const f = await fixture((c) => {
    c.self_service.enabled = true;
    c.http.public_url = "https://mfa.example.com/";
  });
  expect((await f.call("POST", "/users/alice/enrol-link", { key: f.keys.operator })).status).toBe(403);
  const res = await f.call("POST", "/users/Alice/enrol-link", { key: f.keys.admin });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { user: string; link: string; qrSvg: string; expiresAt: string };
  expect(body.user).toBe("alice");
  expect(body.link).toMatch(/^https:\/\/mfa\.example\.com\/self-service\/link\/[A-Za-z0-9_-]{22}$/);
  expect(body.qrSvg).toStartWith("<svg");
  expect(Date.parse(body.expiresAt) - f.deps.now()).toBe(24 * 3_600_000);
  const code = body.link.split("/").at(-1)!;
  expect(JSON.stringify(f.events)).not.toContain(code);
  expect(f.events).toContainEqual({ type: "admin.enrol_link_created", user: "alice", expires_at: body.expiresAt, by: "k-admin" });
  expect((await f.call("POST", "/users/nobody/enrol-link", { key: f.keys.admin })).status).toBe(404);
});

test("409 while the portal is off (the default), and without public_url", async () => {
  const off = await fixture((c) => void (c.http.public_url = "https://mfa.example.com/"));
  expect((await off.call("POST", "/users/alice/enrol-link", { key: off.keys.admin })).status).toBe(409);
  const noUrl = await fixture((c) => void (c.self_service.enabled = true));
  expect((await noUrl.call("POST", "/users/alice/enrol-link", { key: noUrl.keys.admin })).status).toBe(409);
  expect(off.events.concat(noUrl.events).filter((e) => e.type === "admin.enrol_link_created")).toEqual([]);
});
