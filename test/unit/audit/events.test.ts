// The audit event plumbing: log levels per event, the Magic Link log adapter, and the bus's fan-out.

import { describe, expect, test } from "bun:test";
import { AuditBus, levelOf, magicLinkAuditLog, type AuditEvent } from "../../../src/audit/events.ts";

describe("levelOf", () => {
  test.each<[AuditEvent, string]>([
    [{ type: "admin.user_added", user: "tom", by: "k" }, "info"],
    [{ type: "magiclink.sent", endpoint: "default", to: "+46…67", channel: "sms", timeout_s: 90, number_match: false }, "info"],
    [{ type: "delivery.failed", channel: "sms", endpoint: "default", to: "+46…67", reason: "gateway_error", detail: "HTTP 500" }, "warn"],
    [{ type: "delivery.refused", endpoint: "default", to: "+49…89", country: "DE", reason: "country_not_allowed", detail: "" }, "warn"],
    [{ type: "delivery.refused", endpoint: "default", to: "+46…67", country: "SE", reason: "rate_limited", detail: "" }, "warn"],
    [{ type: "delivery.refused", endpoint: "default", to: "+46…56", country: "SE", reason: "number_type_not_allowed", detail: "" }, "warn"],
    [{ type: "magiclink.custom_text_ignored", key: "shop", endpoint: "default" }, "warn"],
    [{ type: "delivery.refused", endpoint: "default", to: "-", country: null, reason: "invalid_number", detail: "" }, "info"],
    [{ type: "auth.failure", channel: "radius", client: "vpn", reason: "bad_code" }, "warn"],
    [{ type: "approval.created", id: "a", kind: "radius", client: "vpn", user: "alice", source: null, expires_in_s: 60, number_match: false }, "info"],
    [{ type: "approval.join_refused", id: "a", kind: "radius", client: "vpn", user: "alice", source: "198.51.100.9", pending_source: "203.0.113.7" }, "warn"],
    [{ type: "sms_code.sent", client: "vpn", user: "alice", channel: "sms", to: "+46…67", expires_in_s: 300 }, "info"],
    [{ type: "sms_code.invalidated", client: "vpn", user: "alice", failures: 3 }, "warn"],
  ])("%o → %s", (event, level) => {
    expect(levelOf(event)).toBe(level as ReturnType<typeof levelOf>);
  });
});

describe("magicLinkAuditLog", () => {
  test("session lines become typed events with the same names and fields", () => {
    const events: AuditEvent[] = [];
    const lines: unknown[][] = [];
    const log = magicLinkAuditLog((e) => void events.push(e), (...a) => void lines.push(a));
    log("info", "magiclink.sent", { endpoint: "default", to: "+46…67", channel: "sms", timeout_s: 90, number_match: true });
    log("info", "magiclink.not_delivered", { endpoint: "default", to: "+46…67", reason: "rate_limited", code: "BAD_REQUEST" });
    log("info", "magiclink.answered", { endpoint: "e", status: "rejected", wrong_number: true });
    log("info", "magiclink.outcome", { endpoint: "e", to: "+46…67", outcome: "cancelled", code: "USER_NOT_RESPONDED" });
    log("info", "magiclink.bad_request", { reason: "endpoint_mismatch", key: "shop" });
    log("warn", "magiclink.custom_text_ignored", { key: "shop", endpoint: "default" });
    expect(events).toEqual([
      { type: "magiclink.sent", endpoint: "default", to: "+46…67", channel: "sms", timeout_s: 90, number_match: true },
      { type: "magiclink.not_delivered", endpoint: "default", to: "+46…67", reason: "rate_limited", code: "BAD_REQUEST" },
      { type: "magiclink.answered", endpoint: "e", status: "rejected", wrong_number: true },
      { type: "magiclink.outcome", endpoint: "e", to: "+46…67", outcome: "cancelled", code: "USER_NOT_RESPONDED" },
      { type: "magiclink.bad_request", reason: "endpoint_mismatch", key: "shop" },
      { type: "magiclink.custom_text_ignored", key: "shop", endpoint: "default" },
    ]);
    expect(lines).toEqual([]);
  });

  test("other lines (operational errors) pass through to the log unchanged", () => {
    const events: AuditEvent[] = [];
    const lines: unknown[][] = [];
    const log = magicLinkAuditLog((e) => void events.push(e), (...a) => void lines.push(a));
    log("error", "magiclink.poll_failed", { error: "StoreError" });
    log("error", "magiclink.no_public_url", { detail: "x" });
    expect(events).toEqual([]);
    expect(lines).toEqual([
      ["error", "magiclink.poll_failed", { error: "StoreError" }],
      ["error", "magiclink.no_public_url", { detail: "x" }],
    ]);
  });
});

test("AuditBus: every subscriber gets the event; a throwing one does not stop the others", () => {
  const bus = new AuditBus();
  const got: string[] = [];
  bus.subscribe(() => {
    throw new Error("broken sink");
  });
  bus.subscribe((e) => void got.push(e.type));
  bus.emit({ type: "admin.client_removed", client: "vpn", by: "k" });
  expect(got).toEqual(["admin.client_removed"]);
});
