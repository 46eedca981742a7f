// Self-service sessions and CSRF tokens.
//
// A session is 256 random bits in a cookie (HttpOnly, SameSite=Strict, Secure and `__Host-` on a TLS
// listener); the store keeps only its SHA-256, with an idle and an absolute end. Forms carry a CSRF
// token: HMAC-SHA-256 under the portal's server secret of the session's cookie value, or before
// sign-in of a random pre-session cookie's value, so that a form made for one browser is refused
// in another (login CSRF included). A sign-in waiting for an approver-app approval keeps its
// challenge State in a third cookie, sealed with an HMAC so that only what the server set is read.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { HttpEnv } from "../http/types.ts";

/** The cookie names: `__Host-` (Secure, Path=/, no Domain) on a TLS listener. */
export function cookieNames(tls: boolean): { session: string; pre: string; wait: string } {
  return tls
    ? { session: "__Host-portcullis-ss", pre: "__Host-portcullis-ss-pre", wait: "__Host-portcullis-ss-wait" }
    : { session: "portcullis-ss", pre: "portcullis-ss-pre", wait: "portcullis-ss-wait" };
}

/** SHA-256 hex of a cookie value: the store's key for a session. */
export function sessionIdHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** A cookie's value when it has the shape this portal gives (256 bits, base64url), else undefined. */
export function readCookie(c: Context<HttpEnv>, name: string): string | undefined {
  const v = getCookie(c, name);
  return v !== undefined && COOKIE_VALUE.test(v) ? v : undefined;
}

/** Sets a cookie the browser keeps for the session only (no Max-Age: the store decides the end). */
export function writeCookie(c: Context<HttpEnv>, name: string, value: string, tls: boolean): void {
  setCookie(c, name, value, { path: "/", httpOnly: true, secure: tls, sameSite: "Strict" });
}

export function clearCookie(c: Context<HttpEnv>, name: string, tls: boolean): void {
  deleteCookie(c, name, { path: "/", secure: tls });
}

/** 256 random bits, base64url (43 characters). */
export function newCookieValue(random: (n: number) => Uint8Array): string {
  return Buffer.from(random(32)).toString("base64url");
}

/** The CSRF token of the forms shown to the holder of cookie `value` (`purpose` keeps pre-session and session tokens apart). */
export function csrfToken(secret: Uint8Array, purpose: "pre" | "session", value: string): string {
  return createHmac("sha256", secret).update(`portcullis self-service csrf\n${purpose}\n${value}`).digest("base64url");
}

/** Constant-time check of a submitted CSRF token. */
export function csrfValid(secret: Uint8Array, purpose: "pre" | "session", value: string | undefined, submitted: unknown): boolean {
  if (value === undefined || typeof submitted !== "string") return false;
  const want = Buffer.from(csrfToken(secret, purpose, value));
  const got = Buffer.from(submitted);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A sign-in waiting for the user's answer in the approver app (the wait cookie's contents). */
export interface WaitingSignIn {
  /** The challenge State the engine issued (256 random bits): the next leg presents it. */
  state: Uint8Array;
  /** The approval's ID (the status poll reads its state). */
  approval: string;
  /** The user name as typed (the next leg names the user again, as a RADIUS second leg does). */
  username: string;
  /** The number to pick in the app (number matching), or null. */
  number: number | null;
  /** When the approval ends (ms). */
  expiresAt: number;
}

const WAIT_MAX = 1024;

function waitMac(secret: Uint8Array, body: string): string {
  return createHmac("sha256", secret).update(`portcullis self-service wait\n${body}`).digest("base64url");
}

/** The wait cookie's value: the JSON of `w` (base64url) and its HMAC under the portal's secret. */
export function sealWaiting(secret: Uint8Array, w: WaitingSignIn): string {
  const body = Buffer.from(JSON.stringify({ s: Buffer.from(w.state).toString("base64url"), a: w.approval, u: w.username, n: w.number, e: w.expiresAt }), "utf8").toString("base64url");
  return `${body}.${waitMac(secret, body)}`;
}

/** The waiting sign-in of a wait cookie's value; undefined unless the server sealed it (constant-time check). */
export function openWaiting(secret: Uint8Array, value: string | undefined): WaitingSignIn | undefined {
  if (value === undefined || value.length > WAIT_MAX) return undefined;
  const dot = value.indexOf(".");
  if (dot <= 0) return undefined;
  const body = value.slice(0, dot);
  const want = Buffer.from(waitMac(secret, body));
  const got = Buffer.from(value.slice(dot + 1));
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  try {
    const j = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Record<string, unknown>;
    if (typeof j.s !== "string" || typeof j.a !== "string" || typeof j.u !== "string" || typeof j.e !== "number") return undefined;
    if (j.n !== null && typeof j.n !== "number") return undefined;
    return { state: new Uint8Array(Buffer.from(j.s, "base64url")), approval: j.a, username: j.u, number: j.n as number | null, expiresAt: j.e };
  } catch {
    return undefined;
  }
}

/** Sets the wait cookie (HttpOnly, SameSite=Strict, Secure on TLS; for the browser session only). */
export function writeWaitCookie(c: Context<HttpEnv>, name: string, value: string, tls: boolean): void {
  setCookie(c, name, value, { path: "/", httpOnly: true, secure: tls, sameSite: "Strict" });
}
