// Hono middleware shared by both listeners: request IDs, security headers, the client address,
// JSON errors that never echo input, API-key authentication and the valibot validation hook.

import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { Level } from "../audit/log.ts";
import type { ApiKeyRole, Store } from "../store/types.ts";
import { contains, parseAddress, parseCIDR, type Network } from "../util/cidr.ts";
import { verifyApiKey, type ApiKeyFailure } from "./api-keys.ts";
import type { HttpEnv } from "./types.ts";

type Ctx = Context<HttpEnv>;

/** Sets `requestId` (128 random bits, hex) and the X-Request-Id response header. Incoming IDs are ignored. */
export function requestId(random: (n: number) => Uint8Array): MiddlewareHandler<HttpEnv> {
  return async function requestIdMiddleware(c, next) {
    const id = Buffer.from(random(16)).toString("hex");
    c.set("requestId", id);
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}

/** The Content-Security-Policy of every response: no inline script, no framing, forms post to us. */
export const CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/**
 * Security headers on every response: CSP, nosniff, no referrer, no framing, HSTS when `tls`, and
 * `Cache-Control: no-store` unless the handler chose a cache policy (API answers and pages carry
 * tokens; nothing here is meant for shared caches). A handler may set a CSP of its own that is at
 * least as strict (the approver app's, src/app/routes.tsx); every other answer gets CSP.
 */
export function securityHeaders({ tls }: { tls: boolean }): MiddlewareHandler<HttpEnv> {
  return async function securityHeadersMiddleware(c, next) {
    await next();
    setSecurityHeaders(c.res.headers, tls);
  };
}

function setSecurityHeaders(h: Headers, tls: boolean): void {
  if (!h.has("Content-Security-Policy")) h.set("Content-Security-Policy", CSP);
  h.set("X-Content-Type-Options", "nosniff");
  h.set("Referrer-Policy", "no-referrer");
  h.set("X-Frame-Options", "DENY");
  h.set("Cross-Origin-Opener-Policy", "same-origin");
  if (tls) h.set("Strict-Transport-Security", "max-age=31536000");
  if (!h.has("Cache-Control")) h.set("Cache-Control", "no-store");
}

/** Strips IPv4-mapped IPv6 ("::ffff:192.0.2.1" → "192.0.2.1") and brackets/ports a proxy may add. */
function normaliseAddress(text: string): string | undefined {
  let s = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracketed) s = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(":"));
  const parsed = parseAddress(s);
  if (!parsed) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return mapped ? mapped[1]! : s;
}

/**
 * The client address for a socket peer and an X-Forwarded-For value. The header is believed only
 * when the peer is a trusted proxy; it is then walked from the right (the hop nearest to us), and
 * the first address that is not a trusted proxy is the client. A malformed entry stops the walk at
 * the last trusted hop. When every hop is trusted, the leftmost one is the client.
 */
export function resolveClientIp(peer: string, forwardedFor: string | undefined, trusted: readonly Network[]): string {
  const start = normaliseAddress(peer) ?? peer;
  const isTrusted = (addr: string) => {
    const parsed = parseAddress(addr);
    return parsed !== undefined && trusted.some((net) => contains(net, parsed));
  };
  if (!forwardedFor || trusted.length === 0 || !isTrusted(start)) return start;
  const hops = forwardedFor.split(",");
  let client = start;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normaliseAddress(hops[i]!);
    if (hop === undefined) return client;
    client = hop;
    if (!isTrusted(hop)) return hop;
  }
  return client;
}

/**
 * Sets `clientIp` from the socket peer (c.env.remoteAddress) and, through `trustedProxies` (CIDRs
 * or addresses, as validated by the config), X-Forwarded-For. Throws TypeError at construction for
 * an entry that is not a CIDR.
 */
export function clientIp(trustedProxies: readonly string[]): MiddlewareHandler<HttpEnv> {
  const trusted = trustedNetworks(trustedProxies);
  return async function clientIpMiddleware(c, next) {
    const peer = c.env?.remoteAddress ?? "";
    c.set("clientIp", resolveClientIp(peer, c.req.header("x-forwarded-for"), trusted));
    await next();
  };
}

function trustedNetworks(trustedProxies: readonly string[]): Network[] {
  return trustedProxies.map((t) => {
    const net = parseCIDR(t);
    if (!net) throw new TypeError(`http.trusted_proxies: "${t}" is not a CIDR network or address`);
    return net;
  });
}

/** Short, fixed reasons for HTTP statuses; an error body says only these and the request ID. */
const STATUS_REASON: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
  500: "internal_error",
  503: "unavailable",
};

/** The JSON error body: `{"error": reason, "requestId": id}`. Never carries input. */
export function errorBody(c: Ctx, status: number): { error: string; requestId: string | undefined } {
  return { error: STATUS_REASON[status] ?? (status >= 500 ? "internal_error" : "bad_request"), requestId: c.get("requestId") };
}

/**
 * app.onError and app.notFound handlers answering JSON. An HTTPException keeps its status (its
 * message is not sent: it may hold input); anything else is a 500, logged by error name only.
 */
export function jsonErrors(log: (level: Level, event: string, fields?: Record<string, unknown>) => void): {
  onError: ErrorHandler<HttpEnv>;
  notFound: NotFoundHandler<HttpEnv>;
} {
  return {
    onError: function jsonOnError(err, c) {
      const status = err instanceof HTTPException ? err.status : 500;
      if (status >= 500) {
        log("error", "http.error", { requestId: c.get("requestId"), path: c.req.routePath, error: err instanceof Error ? err.name : "error" });
      }
      return c.json(errorBody(c, status), status);
    },
    notFound: function jsonNotFound(c) {
      return c.json(errorBody(c, 404), 404);
    },
  };
}

/** Request body caps, in bytes. Each route reads a body only after checking what it can without it. */
export const BODY_LIMITS = {
  /** An HTML form post (approval page): a CSRF token and a choice. */
  form: 4 * 1024,
  /** An approver-app call (/app/api/v1): a key, a name and a push subscription at most. */
  device: 8 * 1024,
  /** Any other public route, and the public listener as a whole. */
  public: 64 * 1024,
  /** An admin API call other than an import. */
  admin: 64 * 1024,
  /** An admin API import (users CSV, PSKC or CSV tokens), and the admin listener as a whole. */
  adminImport: 8 * 1024 * 1024,
} as const;

/**
 * Caps the request body at `maxBytes`: a declared Content-Length above it is refused at once, and a
 * chunked body is refused as soon as it passes it. The answer is 413 with the JSON error body (the
 * security headers are added by securityHeaders like on every answer); the body is never drained.
 */
export function bodyCap(maxBytes: number): MiddlewareHandler<HttpEnv> {
  const limit = bodyLimit({ maxSize: maxBytes, onError: (c) => c.json(errorBody(c as Ctx, 413), 413) });
  return async function bodyCapMiddleware(c, next) {
    const length = c.req.header("content-length");
    // A malformed Content-Length would make the cap compare NaN: refuse it outright.
    if (length !== undefined && !/^\d{1,15}$/.test(length)) return c.json(errorBody(c, 400), 400);
    return limit(c, next);
  };
}

/**
 * Refuses, with 413, a request whose declared Content-Length exceeds `maxBytes`, without reading
 * anything. A chunked body is left to the route's own bodyCap (after the route's checks) and to the
 * listener, which stops any body at its limit.
 */
export function declaredBodyCap(maxBytes: number): MiddlewareHandler<HttpEnv> {
  return async function declaredBodyCapMiddleware(c, next) {
    const refused = declaredBodyRefusal(c, maxBytes);
    if (refused) return refused;
    await next();
  };
}

function declaredBodyRefusal(c: Ctx, maxBytes: number): Response | undefined {
  const length = c.req.header("content-length");
  if (length === undefined || c.req.header("transfer-encoding") !== undefined) return undefined;
  if (!/^\d{1,15}$/.test(length)) return c.json(errorBody(c, 400), 400);
  if (Number(length) > maxBytes) return c.json(errorBody(c, 413), 413);
  return undefined;
}

/**
 * Everything each answer of a listener passes through, in one middleware (one waiting frame per
 * request, which matters for thousands of blocked Magic Link calls): the request ID, the client
 * address (requestId and clientIp), the declared-length cap (declaredBodyCap), then after the route
 * the X-Request-Id and security headers (securityHeaders) and `onAnswered` with the status. Throws
 * TypeError at construction for a bad trusted proxy.
 */
export function edge({
  random,
  tls,
  trustedProxies,
  maxDeclaredBody,
  onAnswered,
}: {
  random: (n: number) => Uint8Array;
  tls: boolean;
  trustedProxies: readonly string[];
  maxDeclaredBody: number;
  onAnswered?: (status: number) => void;
}): MiddlewareHandler<HttpEnv> {
  const trusted = trustedNetworks(trustedProxies);
  return async function edgeMiddleware(c, next) {
    const id = Buffer.from(random(16)).toString("hex");
    c.set("requestId", id);
    c.set("clientIp", resolveClientIp(c.env?.remoteAddress ?? "", c.req.header("x-forwarded-for"), trusted));
    const refused = declaredBodyRefusal(c, maxDeclaredBody);
    if (refused) c.res = refused;
    else await next();
    onAnswered?.(c.res.status);
    c.res.headers.set("X-Request-Id", id);
    setSecurityHeaders(c.res.headers, tls);
  };
}

/** What apiKeyAuth hands to the caller's failure handler. */
export interface ApiKeyAuthFailure {
  reason: ApiKeyFailure;
}

/**
 * Authenticates by the `api-key` header (also `Authorization: Bearer KEY`), allowing `roles`. On
 * success sets `apiKey` and records the use; on failure answers with `onFail` (default: 401 JSON
 * `{"error":"unauthorized"}`). The Magic Link API answers HTTP 200 `{"code":"BAD_REQUEST"}` instead.
 * A store failure becomes a 503 through onError.
 */
export function apiKeyAuth({
  store,
  roles,
  now,
  onFail = (c) => c.json(errorBody(c, 401), 401),
}: {
  store: Store;
  roles: readonly ApiKeyRole[];
  now: () => number;
  onFail?: (c: Ctx, failure: ApiKeyAuthFailure) => Response | Promise<Response>;
}): MiddlewareHandler<HttpEnv> {
  return async function apiKeyAuthMiddleware(c, next) {
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const presented = c.req.header("api-key") ?? bearer;
    let check;
    try {
      check = await verifyApiKey(store, presented, { now: now(), roles });
    } catch {
      throw new HTTPException(503);
    }
    if (!check.ok) return onFail(c, { reason: check.reason });
    c.set("apiKey", check.key);
    // Best effort, at most once a minute per key: a busy key should not write on every call.
    const t = now();
    if (check.key.lastUsedAt === null || t - check.key.lastUsedAt > 60_000) void store.apiKeys.touch(check.key.id, t).catch(() => {});
    await next();
  };
}

/** One validation issue as reported: where, and what was expected. Never the received value. */
export interface ValidationIssue {
  path: string;
  expected: string | null;
}

interface ValibotLikeIssue {
  expected?: string | null;
  path?: Array<{ key: unknown }>;
}

/** Issues reduced to paths and expectations: valibot's own messages quote the received input. */
export function safeIssues(issues: readonly ValibotLikeIssue[]): ValidationIssue[] {
  return issues.slice(0, 20).map((i) => {
    const keys = (i.path ?? []).map((p) => (typeof p.key === "string" || typeof p.key === "number" ? String(p.key) : "?"));
    // A strict object reports an unknown key as its path with expected "never": that key is input.
    if (i.expected === "never" && keys.length > 0) keys[keys.length - 1] = "(unknown key)";
    return { path: keys.join("."), expected: i.expected ?? null };
  });
}

/**
 * A hook for @hono/valibot-validator's `vValidator(target, schema, hook)` that never echoes input.
 * Default answer: 400 `{"error":"bad_request","requestId":…,"issues":[{path,expected}]}`; pass
 * `respond` for another shape (Magic Link: HTTP 200 `{"code":"BAD_REQUEST"}`).
 */
export function validationHook(
  respond: (c: Ctx, issues: ValidationIssue[]) => Response | Promise<Response> = (c, issues) => c.json({ ...errorBody(c, 400), issues }, 400),
) {
  return function validationFailed(result: { success: boolean; issues?: readonly ValibotLikeIssue[] }, c: Ctx) {
    if (!result.success) return respond(c, safeIssues(result.issues ?? []));
  };
}
