// The HTTP SMS gateway channel: one templated HTTP request per message, as most SMS providers take it.
//
//   POST {url}                       (or GET {url}?{rendered body})
//   Content-Type: application/x-www-form-urlencoded | application/json
//   Authorization: Basic …           (from user/password), plus configured headers
//
//   to=%2B46701234567&message=Approve+…     ← body template "to={to}&message={message}"
//
// Success is a 2xx answer whose body matches `successMatch` when one is set (some gateways answer
// 200 with an error body). Redirects are not followed: a configured header may hold a credential
// that must not travel to another host. Neither the message, the URL nor a header value ever
// appears in a result's detail.

import type { Channel, DeliveryResult, OutboundMessage, SendOptions } from "./types.ts";

export interface SmsHttpOptions {
  /** Channel name for logs and metrics; default "sms". */
  name?: string;
  url: string;
  method: "POST" | "GET";
  /** Encoding of the body template's values and the Content-Type; GET always uses form encoding. */
  contentType: "form" | "json";
  /** Template holding `{to}` and `{message}`. */
  body: string;
  /** Extra headers; they override the Content-Type and Authorization set here. */
  headers?: Record<string, string>;
  /** HTTP basic authentication. */
  basicAuth?: { user: string; password: string };
  /** The 2xx body must match this for success. */
  successMatch?: RegExp;
  timeoutMs: number;
  /** Replaces globalThis.fetch (tests). */
  fetch?: typeof fetch;
}

/** The body is read up to this many bytes (enough for any gateway answer, bounded against abuse). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** One value encoded as application/x-www-form-urlencoded does (WHATWG URL §5.2): spaces as "+". */
export function formEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

/** One value escaped for use inside a JSON string literal (without the quotes). */
export function jsonEscape(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/**
 * Fills `template`'s `{to}` (E.164 with "+"), `{to_digits}` (the same without "+", as Vonage takes
 * it) and `{message}` in one pass (a message containing "{to}" stays as written), each value
 * encoded with `encode`.
 */
export function renderTemplate(template: string, values: { to: string; message: string }, encode: (s: string) => string): string {
  const all = { to: values.to, to_digits: values.to.replace(/^\+/, ""), message: values.message };
  return template.replace(/\{(to|to_digits|message)\}/g, (_, k: keyof typeof all) => encode(all[k]));
}

/** True when a body template names the destination and the message. */
export function isBodyTemplate(s: string): boolean {
  return (s.includes("{to}") || s.includes("{to_digits}")) && s.includes("{message}");
}

/** The request the gateway receives for `msg`: URL and fetch init. */
export function gatewayRequest(opts: SmsHttpOptions, msg: OutboundMessage): { url: string; init: RequestInit & { headers: Record<string, string> } } {
  const values = { to: msg.to, message: msg.text };
  const headers: Record<string, string> = {};
  if (opts.basicAuth) headers["Authorization"] = `Basic ${Buffer.from(`${opts.basicAuth.user}:${opts.basicAuth.password}`, "utf8").toString("base64")}`;
  if (opts.method === "GET") {
    const query = renderTemplate(opts.body, values, formEncode);
    const url = opts.url + (opts.url.includes("?") ? "&" : "?") + query;
    return { url, init: { method: "GET", headers: { ...headers, ...opts.headers }, redirect: "manual" } };
  }
  const json = opts.contentType === "json";
  headers["Content-Type"] = json ? "application/json" : "application/x-www-form-urlencoded";
  const body = renderTemplate(opts.body, values, json ? jsonEscape : formEncode);
  return { url: opts.url, init: { method: "POST", headers: { ...headers, ...opts.headers }, body, redirect: "manual" } };
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES));
}

/**
 * The provider's message ID from a JSON answer, when it has a familiar one: Twilio `sid`, 46elks
 * `id`, Vonage `messages[0]["message-id"]`. Only short printable IDs are kept.
 */
export function providerIdFrom(body: string): string | undefined {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof j !== "object" || j === null) return undefined;
  const o = j as Record<string, unknown>;
  const first = Array.isArray(o.messages) ? (o.messages[0] as Record<string, unknown> | undefined) : undefined;
  const id = o.sid ?? o.id ?? o.message_id ?? first?.["message-id"];
  return typeof id === "string" && /^[\x21-\x7e]{1,128}$/.test(id) ? id : undefined;
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code ?? e?.name;
  return typeof code === "string" && /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : "unknown";
}

/**
 * An HTTP SMS gateway channel.
 *
 * @throws TypeError when `url` is not an http(s) URL or the body template lacks `{to}` or `{message}`.
 */
export function createSmsHttpChannel(opts: SmsHttpOptions): Channel {
  if (!/^https?:\/\//.test(opts.url) || !URL.canParse(opts.url)) throw new TypeError("sms gateway: url must be an http(s) URL");
  if (!isBodyTemplate(opts.body)) throw new TypeError("sms gateway: body must contain {to} (or {to_digits}) and {message}");
  const doFetch = opts.fetch ?? fetch;
  const name = opts.name ?? "sms";
  return {
    name,
    kind: "sms",
    async send(msg: OutboundMessage, { signal }: SendOptions = {}): Promise<DeliveryResult> {
      const { url, init } = gatewayRequest(opts, msg);
      const timeout = AbortSignal.timeout(opts.timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        const res = await doFetch(url, { ...init, signal: combined });
        const body = await readCapped(res);
        if (res.status < 200 || res.status > 299) {
          return { ok: false, reason: res.status >= 400 && res.status < 500 ? "rejected" : "gateway_error", detail: `HTTP ${res.status}` };
        }
        if (opts.successMatch && !opts.successMatch.test(body)) {
          return { ok: false, reason: "rejected", detail: `HTTP ${res.status} without a success_match match` };
        }
        const providerId = providerIdFrom(body);
        return providerId === undefined ? { ok: true } : { ok: true, providerId };
      } catch (err) {
        if (timeout.aborted) return { ok: false, reason: "timeout", detail: `no answer within ${opts.timeoutMs} ms` };
        if (signal?.aborted) return { ok: false, reason: "timeout", detail: "aborted by the caller" };
        return { ok: false, reason: "network", detail: `network error (${errorCode(err)})` };
      }
    },
  };
}
