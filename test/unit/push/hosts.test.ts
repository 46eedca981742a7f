// [push] allowed_hosts: which subscription endpoints are accepted (and later sent to).

import { describe, expect, test } from "bun:test";
import { DEFAULT_PUSH_HOSTS, isPushHostRule, PushHosts } from "../../../src/push/hosts.ts";
import { parsePushSubscription } from "../../../src/push/subscription.ts";
import { isPushSubject, loadConfig } from "../../../src/config/index.ts";
import { createECDH, randomBytes } from "node:crypto";

const defaults = new PushHosts(DEFAULT_PUSH_HOSTS);
const tests = new PushHosts(["127.0.0.1", "::1", "push.example.net"]);

describe("PushHosts.check", () => {
  test.each([
    // The real services' endpoint shapes.
    ["https://web.push.apple.com/QGuQyavXutnMH_abc", true],
    ["https://fcm.googleapis.com/fcm/send/dAbC:APA91bH", true],
    ["https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk", true],
    ["https://wns2-par02p.notify.windows.com/w/?token=BQYAAA", true],
    // A wildcard is for subdomains only; look-alikes and other hosts are refused.
    ["https://push.apple.com/x", false],
    ["https://evilpush.apple.com.example.org/x", false],
    ["https://notify.windows.com.attacker.test/x", false],
    ["https://android.googleapis.com/gcm/send/x", false],
    ["https://fcm.googleapis.com.evil.test/x", false],
    ["https://10.0.0.5/x", false],
    ["https://169.254.169.254/latest/meta-data", false],
    // Never plain http to a real service, never credentials or fragments.
    ["http://fcm.googleapis.com/fcm/send/x", false],
    ["https://user:pw@fcm.googleapis.com/fcm/send/x", false],
    ["https://fcm.googleapis.com/fcm/send/x#frag", false],
    ["ftp://fcm.googleapis.com/x", false],
    ["not a url", false],
    [`https://fcm.googleapis.com/${"a".repeat(2048)}`, false],
  ])("default list: %s → %p", (endpoint, ok) => {
    expect(defaults.check(endpoint).ok).toBe(ok);
  });

  test.each([
    ["http://127.0.0.1:4000/push/x", true, undefined],
    ["http://[::1]:4000/push/x", true, undefined],
    ["https://127.0.0.1:4000/push/x", true, undefined],
    ["https://push.example.net/x", true, undefined],
    // http: only to a loopback address listed literally; never to a name, never elsewhere.
    ["http://push.example.net/x", false, "not_https"],
    ["http://localhost:4000/push/x", false, "not_https"],
    ["http://127.0.0.2:4000/push/x", false, "host_not_allowed"],
    ["http://192.0.2.7/push/x", false, "not_https"],
    ["https://fcm.googleapis.com/fcm/send/x", false, "host_not_allowed"],
  ])("test list: %s → %p", (endpoint, ok, reason) => {
    const r = tests.check(endpoint);
    expect(r.ok).toBe(ok);
    if (!r.ok) expect(r.reason).toBe(reason as never);
  });

  test("the stored form is the normalised URL (lower-case host, no default port): the VAPID audience is its origin", () => {
    const r = defaults.check("https://FCM.googleapis.com:443/fcm/send/x");
    expect(r.ok && r.url.href).toBe("https://fcm.googleapis.com/fcm/send/x");
    expect(r.ok && r.url.origin).toBe("https://fcm.googleapis.com");
  });

  test.each([
    ["fcm.googleapis.com", true],
    ["*.push.apple.com", true],
    ["127.0.0.1", true],
    ["[::1]", true],
    ["*", false],
    ["*.com.", false],
    ["https://fcm.googleapis.com", false],
    ["fcm.googleapis.com/x", false],
    ["", false],
  ])("rule %p valid: %p", (rule, ok) => {
    expect(isPushHostRule(rule)).toBe(ok);
  });
});

describe("[push] config", () => {
  test("defaults: the four browser push services, 10 s, no subject", () => {
    const { config } = loadConfig({ env: {}, dataDir: "/tmp/none", systemFile: "/tmp/none/none.toml" });
    expect(config.push).toEqual({ subject: "", allowed_hosts: DEFAULT_PUSH_HOSTS, timeout_ms: 10_000 });
  });

  test.each([
    ["", true],
    ["mailto:ops@example.com", true],
    ["https://mfa.example.com/contact", true],
    ["https://localhost/contact", false],
    ["http://mfa.example.com", false],
    ["ops@example.com", false],
    ["mailto:", false],
  ])("subject %p valid: %p", (subject, ok) => {
    expect(isPushSubject(subject)).toBe(ok);
  });

  test("a bad entry is refused naming the key, not echoing the value", () => {
    let message = "";
    try {
      loadConfig({ env: { PORTCULLIS_PUSH_ALLOWED_HOSTS: "https://evil.test/secret-path" }, dataDir: "/tmp/none", systemFile: "/tmp/none/none.toml" });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("push.allowed_hosts");
    expect(message).not.toContain("secret-path");
  });
});

describe("parsePushSubscription", () => {
  const ua = createECDH("prime256v1");
  ua.generateKeys();
  const good = { endpoint: "https://fcm.googleapis.com/fcm/send/abc", keys: { p256dh: ua.getPublicKey("base64url"), auth: randomBytes(16).toString("base64url") } };
  test("a browser's PushSubscription JSON is accepted (expirationTime tolerated)", async () => {
    expect(await parsePushSubscription({ ...good, expirationTime: null }, defaults)).toEqual({ ok: true, subscription: { endpoint: good.endpoint, p256dh: good.keys.p256dh, auth: good.keys.auth } });
  });
  test.each([
    ["p256dh not on the curve", { ...good, keys: { ...good.keys, p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]).toString("base64url") } }, "bad_keys"],
    ["p256dh compressed", { ...good, keys: { ...good.keys, p256dh: ua.getPublicKey("base64url", "compressed") } }, "bad_keys"],
    ["auth of 12 bytes", { ...good, keys: { ...good.keys, auth: randomBytes(12).toString("base64url") } }, "bad_keys"],
    ["an extra key member", { ...good, keys: { ...good.keys, x: "y" } }, "bad_keys"],
    ["no keys", { endpoint: good.endpoint }, "bad_keys"],
    ["an unknown member", { ...good, extra: 1 }, "malformed"],
    ["a host not allowed", { ...good, endpoint: "https://push.example.org/x" }, "host_not_allowed"],
    ["http to a real host", { ...good, endpoint: "http://fcm.googleapis.com/fcm/send/abc" }, "not_https"],
  ])("%s → %s", async (_, input, reason) => {
    expect(await parsePushSubscription(input, defaults)).toEqual({ ok: false, reason: reason as never });
  });
});
