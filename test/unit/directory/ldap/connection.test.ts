// URL health back-off (frozen clock) and secret-free failure reasons.
import { describe, expect, test } from "bun:test";
import { InvalidCredentialsError } from "ldapts";
import { isNetworkError, reason, UrlHealth } from "../../../../src/directory/ldap/connection.ts";

describe("UrlHealth", () => {
  const A = "ldaps://dc1:636", B = "ldaps://dc2:636", C = "ldaps://dc3:636";

  test("configured order while healthy", () => {
    expect(new UrlHealth(() => 0).order([A, B, C])).toEqual([A, B, C]);
  });

  test("a failed URL rests 1 s, 2 s, 4 s … capped, and comes back after its rest", () => {
    let now = 0;
    const h = new UrlHealth(() => now, 1000, 8000);
    const rests: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.failed(A);
      rests.push(h.restingFor(A));
    }
    expect(rests).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(h.order([A, B])).toEqual([B]);
    now = 7999;
    expect(h.order([A, B])).toEqual([B]);
    now = 8000;
    expect(h.order([A, B])).toEqual([A, B]);
  });

  test("success resets the back-off", () => {
    const h = new UrlHealth(() => 0);
    h.failed(A);
    h.failed(A);
    h.succeeded(A);
    expect(h.restingFor(A)).toBe(0);
    h.failed(A);
    expect(h.restingFor(A)).toBe(1000);
  });

  test("when every URL rests, all are tried again in order (the profile recovers)", () => {
    const h = new UrlHealth(() => 0);
    h.failed(B);
    h.failed(A);
    expect(h.order([A, B])).toEqual([A, B]);
  });
});

describe("reason / isNetworkError", () => {
  test("LDAP results are not network errors and are reported by code only", () => {
    const e = new InvalidCredentialsError("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563");
    expect(isNetworkError(e)).toBe(false);
    expect(reason(e)).toBe("LDAP result 49");
  });
  test("socket errors are network errors, reported by their code", () => {
    const e = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(isNetworkError(e)).toBe(true);
    expect(reason(e)).toBe("ECONNREFUSED");
  });
});
