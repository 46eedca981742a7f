// The admin UI's Delivery page shows the delivery settings in force, read-only: the channels in
// the order they are tried with where each goes (a gateway by its origin only), the limits, the
// allowed destinations and the SMS code rules; never a password, token, URL path or query.

import { afterEach, expect, test } from "bun:test";
import { addAdminAccount } from "../../../../src/admin/admin-accounts.ts";
import { setLogSink } from "../../../../src/audit/log.ts";
import { buildAdminApp } from "../../../../src/http/app.ts";
import { decodeBase32, generateTOTP } from "../../../../src/otp/index.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { cleanup } from "../../store/helpers.ts";
import { testDeps } from "../helpers.ts";

setLogSink(() => {});

const PASSWORD = "a long admin password";
const T0 = Date.parse("2026-12-03T10:05:30Z");
const opened: Array<{ store: SqliteStore; dir: string }> = [];

afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.store.close();
    cleanup(o.dir);
  }
});

async function deliveryPage(role: "root" | "operator"): Promise<{ status: number; text: string }> {
  const t = await testDeps({
    tls: false,
    now: () => T0,
    random: (n) => crypto.getRandomValues(new Uint8Array(n)),
    configPatch: (c) => {
      c.delivery.sms.url = "https://api.sms.example/v1/Accounts/AC-SECRET-ACCOUNT/Messages?token=QUERY-SECRET";
      c.delivery.sms.password = "SMS-PASSWORD-SECRET";
      c.delivery.smtp.host = "smtp.example.net";
      c.delivery.smtp.password = "SMTP-PASSWORD-SECRET";
      c.delivery.channels = ["sms", "email"];
      c.delivery.per_number_per_minute = 4;
      c.delivery.per_key_per_hour = 0;
      c.delivery.allowed_countries = ["SE", "NO"];
    },
  });
  opened.push({ store: t.store, dir: t.dir });
  const ctx = { config: t.deps.config, store: t.store, audit: { actor: { name: "t", role: "root" as const }, change: async <T>(f: () => Promise<T>) => f(), note: async () => {} }, now: () => T0, random: t.deps.random };
  const { uri } = await addAdminAccount(ctx, { name: "ann", role, password: PASSWORD });
  const secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
  const app = buildAdminApp(t.deps);
  const req = (path: string, init: RequestInit = {}) => app.request(`http://127.0.0.1${path}`, init);
  const page = await req("/ui/sign-in");
  const pre = page.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const code = generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now: T0 });
  const res = await req("/ui/sign-in", { method: "POST", headers: { cookie: pre, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ csrf, name: "ann", password: PASSWORD, code }).toString() });
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const r = await req("/ui/delivery", { headers: { cookie } });
  return { status: r.status, text: await r.text() };
}

test("the Delivery page lists the channels in order with where each goes, the limits and the SMS rules, and no secret", async () => {
  const { status, text } = await deliveryPage("root");
  expect(status).toBe(200);
  const rows = [...text.matchAll(/<tr><td>(\d+)<\/td><td>([^<]+)<\/td><td>([^<]+)<\/td><\/tr>/g)].map((m) => [m[1], m[2], m[3]]);
  expect(rows).toEqual([
    ["1", "sms", "HTTP gateway https://api.sms.example"],
    ["2", "email", "SMTP smtp.example.net:587, STARTTLS required"],
  ]);
  const limits = /<dl id="delivery-limits">([\s\S]*?)<\/dl>/.exec(text)![1]!.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
  expect(limits).toContain("Per number or address 4 in any 60 s, 30 in any hour");
  expect(limits).toContain("Per API key 30 in any 60 s, off in any hour");
  expect(limits).toContain("SMS allowed to SE, NO");
  expect(limits).toContain("SMS codes 6 characters, numeric");
  for (const s of ["AC-SECRET-ACCOUNT", "QUERY-SECRET", "SMS-PASSWORD-SECRET", "SMTP-PASSWORD-SECRET"]) expect(text).not.toContain(s);
});

test("an operator may not read the Delivery page (settings included)", async () => {
  const { status, text } = await deliveryPage("operator");
  expect(status).toBe(403);
  expect(text).not.toContain("api.sms.example");
});
