// Query parameters: accepted forms, and failures that name the parameter, never the value.

import { describe, expect, test } from "bun:test";
import { parseParams } from "../../../src/magiclink/params.ts";

describe("parseParams", () => {
  test("all parameters", () => {
    const r = parseParams({
      msisdn: "+46701234567",
      "sms-text": "Go: {link}",
      "touch-timeout": "15",
      "authentication-text": "Sign in to Acme?",
      "touch-accept-text": "ok",
      "touch-reject-text": "no",
      "button-accept-text": "Yes",
      "button-reject-text": "No",
      "title-text": "Acme",
      "match-number": "42",
      other: "ignored",
    });
    expect(r).toEqual({
      ok: true,
      params: { msisdn: "+46701234567", smsText: "Go: {link}", touchTimeoutS: 15, authenticationText: "Sign in to Acme?", touchAcceptText: "ok", touchRejectText: "no", buttonAcceptText: "Yes", buttonRejectText: "No", titleText: "Acme", matchNumber: 42 },
    });
  });
  test.each([
    [{ msisdn: "+46701234567", "touch-timeout": "300" }, true],
    [{ msisdn: "+46701234567", "touch-timeout": "14" }, false],
    [{ msisdn: "+46701234567", "touch-timeout": "-20" }, false],
    [{ msisdn: "+46701234567", "touch-timeout": "15.5" }, false],
    [{ msisdn: "+46701234567", "match-number": "09" }, false],
    [{ msisdn: "x".repeat(33) }, false],
    [{}, false],
  ])("%p → ok %p", (query, ok) => {
    expect(parseParams(query).ok).toBe(ok);
  });
  test("a failure names the field and never holds the value", () => {
    const r = parseParams({ msisdn: "+46701234567", "title-text": "secret-value\u0001" });
    expect(r).toEqual({ ok: false, fields: ["title-text"] });
    expect(JSON.stringify(r)).not.toContain("secret-value");
  });
  test("a space where + was meant is restored", () => {
    expect(parseParams({ msisdn: " 46701234567" })).toMatchObject({ ok: true, params: { msisdn: "+46701234567" } });
  });
});
