// The relay (`portcullis switch serve`): accepts appliances' WebSocket connections, delivers their
// messages through its own channels and push, and serves the approval pages under its public_url,
// forwarding each page request to the appliance that owns the link. It keeps no secret of a user:
// the appliance renders the page and checks the answer (CSRF, number match) exactly as on its own
// listener; the relay routes by the link token's hash only. The approver app's API is routed the
// same way: an enrolment call by the hash of its single-use code (announced by the appliance that
// made it), every later call by the device ID the appliance assigned at that enrolment.

import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { appPageRoutes } from "../app/routes.tsx";
import type { AuditEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import { MetricsRegistry, type Counter } from "../audit/metrics.ts";
import type { Dispatcher } from "../delivery/dispatcher.ts";
import { APPROVAL_CSS, APPROVAL_CSS_PATH, InvalidLinkPage } from "../http/pages/approval.tsx";
import { DEVICE_ID, ENROLMENT_CODE, hashEnrolmentCode } from "../devices/keys.ts";
import { hashLinkToken, LINK_TOKEN_PATTERN } from "../magiclink/tokens.ts";
import type { PushHosts } from "../push/hosts.ts";
import type { WsPeer, WsSession } from "../runtime/websocket.ts";
import type { SwitchDb } from "./db.ts";
import { APPLIANCE_NAME, CLOSE_PROTOCOL, LINK_ROUTE_MS, CLOSE_REMOVED, CLOSE_UNAUTHORIZED, FrameCounter, linkTokensIn, parseFrame, parseToken, verifyAuth, type Frame } from "./protocol.ts";

/** An appliance that has not authenticated this long after connecting is closed. */
const AUTH_DEADLINE_MS = 10_000;
/** Connections from one address that have not authenticated yet; one more is closed at once. */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 8;
/** A page request forwarded to an appliance waits this long for its answer. */
const TUNNEL_TIMEOUT_MS = 15_000;
/** An announced enrolment code is routed at most this long (codes live 10 minutes). */
const ENROLMENT_ROUTE_MS = 15 * 60_000;
/** Approver-app event streams the relay holds open for one appliance; one more is answered 429. */
export const MAX_STREAMS_PER_APPLIANCE = 64;
/** Chunks of event-stream text queued for a phone that does not read; one more ends its stream. */
const MAX_QUEUED_STREAM_CHUNKS = 256;
/** Enrolment codes one `enrolments` frame may announce. */
const MAX_ENROLMENTS_PER_FRAME = 200;

export interface SwitchServerOptions {
  db: SwitchDb;
  /** `[switch_server] public_url`: links and the appliances' signatures are bound to it. */
  publicUrl: string;
  /** The relay's own delivery (its channels and SMS-pumping limits). */
  dispatcher: Dispatcher;
  /** Per-appliance limits on messages, counted by the dispatcher's per-key limit. */
  perAppliance: { perMinute: number; perHour: number };
  pushHosts: PushHosts;
  pushTimeoutMs: number;
  audit(event: AuditEvent): void;
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  now?: () => number;
  fetch?: typeof fetch;
  /** Where the relay's metrics are registered (served on `[switch_server] metrics_listen`); default a registry of its own. */
  metrics?: MetricsRegistry;
}

/** Counters the relay exposes on /metrics. */
export interface SwitchCounters {
  framesRefused: number;
  authRefused: number;
  delivered: number;
  pagesForwarded: number;
  /** Approver-app calls answered 404 because neither their enrolment code nor their device was known. */
  appUnrouted: number;
}

interface Conn {
  peer: WsPeer;
  address: string;
  out: FrameCounter;
  lastIn: number;
  nonce: string;
  name?: string;
  publicKey?: string;
  /** Page requests forwarded on this connection, by frame id. */
  pending: Map<number, (f: Frame | undefined) => void>;
  /** Approver-app event streams relayed on this connection, by the frame id that opened them. */
  streams: Map<number, ReadableStreamDefaultController<Uint8Array>>;
  timer?: ReturnType<typeof setTimeout>;
  /** Stops counting this connection as unauthenticated. */
  uncount?: () => void;
}

/** Request headers a relayed call of the approver app's API carries to the appliance (the signature covers method, path, time and body). */
/** The approver app's device protocol, any version the appliances speak (v1, v2): group 1 is the prefix. */
const APP_API_PATH = /^(\/app\/api\/v[12])\//;
const APP_REQUEST_HEADERS = ["content-type", "portcullis-device", "portcullis-time", "portcullis-signature"];

const FORWARDED_HEADERS = ["content-type", "content-security-policy", "cache-control", "x-content-type-options", "x-frame-options", "referrer-policy", "permissions-policy", "cross-origin-opener-policy", "strict-transport-security"];

const TRY_AGAIN = '<html lang="en"><head><meta charset="utf-8"><title>Try again</title></head><body><h1>Please try again in a moment</h1><p>The service behind this link is reconnecting.</p></body></html>';

function html(body: string, status: number): Response {
  return new Response(`<!DOCTYPE html>${body}`, {
    status,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-store",
      "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  });
}

export class SwitchServer {
  private readonly conns = new Map<string, Conn>();
  /** Unauthenticated connections by address (a flood of them must not hold the relay's sockets). */
  private readonly unauthenticated = new Map<string, number>();
  private readonly now: () => number;
  private readonly fetchImpl: typeof fetch;
  readonly counters: SwitchCounters = { framesRefused: 0, authRefused: 0, delivered: 0, pagesForwarded: 0, appUnrouted: 0 };
  private readonly sweep: ReturnType<typeof setInterval>;
  /** The relay's Prometheus metrics (label values come from the code, never from a frame or a request). */
  readonly metrics: MetricsRegistry;
  private readonly m: { frames: Counter; framesRefused: Counter; connectionsRefused: Counter; pushes: Counter; streams: Counter; forwarded: Counter };
  /** Approver-app event streams relayed since start. */
  private streamsOpened = 0;

  constructor(private readonly o: SwitchServerOptions) {
    this.now = o.now ?? Date.now;
    this.fetchImpl = o.fetch ?? globalThis.fetch;
    const r = (this.metrics = o.metrics ?? new MetricsRegistry());
    this.m = {
      frames: r.counter("portcullis_switch_frames_total", "Frames on the appliances' connections, by direction (in: received from an appliance, out: sent to one).", ["direction"]),
      framesRefused: r.counter("portcullis_switch_frames_refused_total", "Frames from authenticated appliances that were refused (and audited as switch.frame_refused), by reason.", ["reason"]),
      connectionsRefused: r.counter("portcullis_switch_connections_refused_total", "Appliance connections closed before or at authentication, by reason (as in switch.auth_refused; too_many_connections: over the unauthenticated connections per address).", ["reason"]),
      pushes: r.counter("portcullis_switch_pushes_total", "Web Push messages posted for appliances, by result: the push service's status class (2xx..5xx), host_not_allowed, timeout or network.", ["result"]),
      streams: r.counter("portcullis_switch_event_streams_total", "Approver-app event streams relayed since start."),
      forwarded: r.counter("portcullis_switch_requests_forwarded_total", "Approval-page and approver-app requests answered by an appliance through the relay."),
    };
    const connected = r.gauge("portcullis_switch_appliances_connected", "Appliances connected and authenticated now.");
    const enrolled = r.gauge("portcullis_switch_appliances_enrolled", "Appliances enrolled in switch.db (a key registered).");
    const unauthenticated = r.gauge("portcullis_switch_connections_unauthenticated", "Connections open now that have not authenticated yet.");
    const inFlight = r.gauge("portcullis_switch_requests_in_flight", "Page and approver-app requests forwarded to an appliance and waiting for its answer now.");
    const links = r.gauge("portcullis_switch_link_routes", "Approval links in flight: routes to their appliance in switch.db that have not expired.");
    const streamsOpen = r.gauge("portcullis_switch_event_streams_open", "Approver-app event streams relayed now.");
    const unrouted = r.counter("portcullis_switch_app_unrouted_total", "Approver-app calls answered 404 because neither their enrolment code nor their device was known to the relay.");
    r.onCollect(() => {
      const conns = [...this.conns.values()];
      connected.set({}, conns.length);
      unauthenticated.set({}, [...this.unauthenticated.values()].reduce((a, n) => a + n, 0));
      inFlight.set({}, conns.reduce((a, c) => a + c.pending.size, 0));
      streamsOpen.set({}, conns.reduce((a, c) => a + c.streams.size, 0));
      this.m.streams.setTotal({}, this.streamsOpened);
      this.m.forwarded.setTotal({}, this.counters.pagesForwarded);
      unrouted.setTotal({}, this.counters.appUnrouted);
      const t = this.now();
      enrolled.set({}, this.o.db.list().filter((a) => a.publicKey !== null).length);
      links.set({}, this.o.db.liveLinks(t));
    });
    // Removed appliances are cut off within a second (the CLI writes switch.db from another process),
    // and routes of ended requests are forgotten.
    this.sweep = setInterval(() => this.check(), 1000);
  }

  /** Names of the appliances connected now. */
  connected(): string[] {
    return [...this.conns.keys()];
  }

  close(): void {
    clearInterval(this.sweep);
    for (const c of this.conns.values()) c.peer.close(1001, "relay stopping");
  }

  private check(): void {
    const t = this.now();
    try {
      this.o.db.purgeExpired(t);
      for (const [name, c] of this.conns) {
        const row = this.o.db.get(name);
        if (!row || row.publicKey !== c.publicKey) {
          this.o.audit({ type: "switch.appliance_removed", appliance: name });
          this.drop(c, CLOSE_REMOVED, "appliance removed");
        }
      }
    } catch (err) {
      this.o.log("error", "switch.db_failed", { error: (err as Error)?.name ?? "error" });
    }
  }

  private drop(c: Conn, code: number, reason: string): void {
    if (c.name && this.conns.get(c.name) === c) this.conns.delete(c.name);
    for (const resolve of c.pending.values()) resolve(undefined);
    c.pending.clear();
    this.endStreams(c);
    c.peer.close(code, reason);
  }

  private send(c: Conn, t: string, fields: Record<string, unknown> = {}): number {
    this.m.frames.inc({ direction: "out" });
    const { id, text } = c.out.frame(t, fields);
    c.peer.send(text);
    return id;
  }

  private refuse(c: Conn, reason: string): void {
    this.counters.framesRefused++;
    this.m.framesRefused.inc({ reason });
    this.o.audit({ type: "switch.frame_refused", appliance: c.name ?? "-", reason });
  }

  /** A new WebSocket: challenge it, and close it unless it authenticates in time. */
  open(peer: WsPeer, address: string): WsSession {
    const c: Conn = { peer, address, out: new FrameCounter(), lastIn: 0, nonce: randomBytes(32).toString("base64url"), pending: new Map(), streams: new Map() };
    const waiting = (this.unauthenticated.get(address) ?? 0) + 1;
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      const n = (this.unauthenticated.get(address) ?? 1) - 1;
      if (n <= 0) this.unauthenticated.delete(address);
      else this.unauthenticated.set(address, n);
    };
    this.unauthenticated.set(address, waiting);
    c.uncount = uncount;
    if (waiting > MAX_UNAUTHENTICATED_PER_ADDRESS) {
      this.counters.authRefused++;
      this.m.connectionsRefused.inc({ reason: "too_many_connections" });
      peer.close(CLOSE_UNAUTHORIZED, "too many connections");
      return { message: () => {}, close: uncount };
    }
    c.timer = setTimeout(() => {
      if (!c.name) {
        this.authRefused(c, "timeout");
      }
    }, AUTH_DEADLINE_MS);
    this.send(c, "challenge", { nonce: c.nonce, public_url: this.o.publicUrl });
    return {
      message: (data) => void this.message(c, data),
      close: () => {
        uncount();
        clearTimeout(c.timer);
        if (c.name && this.conns.get(c.name) === c) {
          this.conns.delete(c.name);
          this.o.audit({ type: "switch.appliance_disconnected", appliance: c.name });
        }
        for (const resolve of c.pending.values()) resolve(undefined);
        c.pending.clear();
        this.endStreams(c);
      },
    };
  }

  /** Ends the phones' event streams of a connection that went (the app then polls, and reconnects). */
  private endStreams(c: Conn): void {
    for (const ctrl of c.streams.values()) {
      try {
        ctrl.close();
      } catch {
        // already closed by the phone
      }
    }
    c.streams.clear();
  }

  private authRefused(c: Conn, reason: string, appliance?: string): void {
    this.counters.authRefused++;
    this.m.connectionsRefused.inc({ reason });
    this.o.audit({ type: "switch.auth_refused", reason, appliance: appliance ?? "-", client: c.address });
    c.peer.close(CLOSE_UNAUTHORIZED, "unauthorized");
  }

  private async message(c: Conn, data: string | Uint8Array): Promise<void> {
    this.m.frames.inc({ direction: "in" });
    const f = parseFrame(data, c.lastIn);
    if (!f) {
      // A replayed, reordered or malformed frame ends the connection: the stream can no longer be trusted.
      this.refuse(c, "malformed_or_replayed");
      this.drop(c, CLOSE_PROTOCOL, "bad frame");
      return;
    }
    c.lastIn = f.id;
    if (!c.name) return this.hello(c, f);
    try {
      switch (f.t) {
        case "deliver":
          return await this.deliver(c, f);
        case "push":
          return await this.push(c, f);
        case "stream-data":
        case "stream-end": {
          const ctrl = typeof f.re === "number" ? c.streams.get(f.re) : undefined;
          // Text for a stream the phone already left crosses the relay's stream-close: dropped quietly.
          if (!ctrl) return;
          try {
            if (f.t === "stream-data" && typeof f.data === "string") {
              if ((ctrl.desiredSize ?? 0) < -MAX_QUEUED_STREAM_CHUNKS) {
                // A phone that stopped reading does not hold the relay's memory: its stream ends.
                c.streams.delete(f.re!);
                this.send(c, "stream-close", { re: f.re });
                ctrl.close();
                return;
              }
              ctrl.enqueue(new TextEncoder().encode(f.data));
            }
            if (f.t === "stream-end") {
              c.streams.delete(f.re!);
              ctrl.close();
            }
          } catch {
            c.streams.delete(f.re!);
          }
          return;
        }
        case "stream-res":
        case "http-res": {
          const resolve = typeof f.re === "number" ? c.pending.get(f.re) : undefined;
          if (!resolve) return this.refuse(c, "unknown_request");
          c.pending.delete(f.re!);
          return resolve(f);
        }
        case "ping":
          this.send(c, "pong", { re: f.id });
          return;
        case "enrolments":
          return this.enrolments(c, f);
        default:
          return this.refuse(c, "unknown_type");
      }
    } catch (err) {
      this.o.log("error", "switch.frame_failed", { appliance: c.name, type: f.t, error: (err as Error)?.name ?? "error" });
    }
  }

  private hello(c: Conn, f: Frame): void {
    const name = typeof f.name === "string" && APPLIANCE_NAME.test(f.name) ? f.name : undefined;
    const sig = typeof f.sig === "string" ? f.sig : "";
    if (f.t !== "hello" || !name) return this.authRefused(c, "bad_hello");
    const enrol = f.enrol as { token?: unknown; public_key?: unknown } | undefined;
    if (enrol !== undefined) {
      const token = typeof enrol.token === "string" ? parseToken(enrol.token) : undefined;
      const key = typeof enrol.public_key === "string" ? enrol.public_key : "";
      if (!token || token.name !== name) return this.authRefused(c, "wrong_token", name);
      // The signature first: a token is spent only by the holder of the key it registers.
      if (!verifyAuth(key, sig, c.nonce, this.o.publicUrl, name)) return this.authRefused(c, "bad_signature", name);
      const r = this.o.db.enrol(name, token.secret, key, this.now());
      if (!r.ok) return this.authRefused(c, r.reason, name);
      this.o.audit({ type: "switch.appliance_enrolled", appliance: name, client: c.address });
    }
    const row = this.o.db.get(name);
    if (!row || !row.publicKey) return this.authRefused(c, "not_enrolled", name);
    if (!verifyAuth(row.publicKey, sig, c.nonce, this.o.publicUrl, name)) return this.authRefused(c, "bad_signature", name);
    clearTimeout(c.timer);
    c.uncount?.();
    c.name = name;
    c.publicKey = row.publicKey;
    // A new connection of the same appliance replaces the old one (the appliance reconnected).
    const old = this.conns.get(name);
    if (old) this.drop(old, 1000, "replaced");
    this.conns.set(name, c);
    this.o.audit({ type: "switch.appliance_connected", appliance: name, client: c.address });
    this.send(c, "welcome", { name, public_url: this.o.publicUrl });
  }

  /** The appliance announces enrolment codes it made (their hashes): their enrolment calls are routed to it. */
  private enrolments(c: Conn, f: Frame): void {
    const codes = Array.isArray(f.codes) ? (f.codes as unknown[]) : undefined;
    if (!codes || codes.length > MAX_ENROLMENTS_PER_FRAME) return this.refuse(c, "bad_enrolments");
    const now = this.now();
    for (const e of codes) {
      const { hash, expires } = (e ?? {}) as { hash?: unknown; expires?: unknown };
      if (typeof hash !== "string" || !/^[0-9a-f]{64}$/.test(hash) || typeof expires !== "number" || !Number.isFinite(expires)) return this.refuse(c, "bad_enrolments");
      if (expires <= now) continue;
      if (!this.o.db.claimEnrolment(hash, c.name!, Math.min(expires, now + ENROLMENT_ROUTE_MS))) this.refuse(c, "foreign_enrolment");
    }
  }

  private async deliver(c: Conn, f: Frame): Promise<void> {
    const text = typeof f.text === "string" ? f.text : "";
    const to = typeof f.to === "string" ? f.to : undefined;
    const email = typeof f.email === "string" ? f.email : undefined;
    if (text === "" || (to === undefined && email === undefined)) {
      this.refuse(c, "bad_deliver");
      this.send(c, "result", { re: f.id, ok: false, reason: "rejected", detail: "malformed delivery request" });
      return;
    }
    // Links in the text route their pages to this appliance; a link another appliance holds is refused.
    const expires = this.now() + LINK_ROUTE_MS;
    for (const token of linkTokensIn(text, this.o.publicUrl)) {
      if (!this.o.db.claimLink(hashLinkToken(token), c.name!, expires)) {
        this.refuse(c, "foreign_link");
        this.send(c, "result", { re: f.id, ok: false, reason: "rejected", detail: "the link belongs to another appliance" });
        return;
      }
    }
    const r = await this.o.dispatcher.deliver({
      msisdn: to,
      email,
      text,
      subject: typeof f.subject === "string" ? f.subject : undefined,
      endpoint: `switch:${c.name}`,
      apiKeyId: `appliance:${c.name}`,
      keyLimits: this.o.perAppliance,
    });
    if (r.ok) this.counters.delivered++;
    this.send(c, "result", r.ok ? { re: f.id, ok: true, channel: r.channel } : { re: f.id, ok: false, reason: r.reason, detail: r.detail });
  }

  /** Posts an already encrypted and VAPID-signed Web Push message for the appliance (its allow-list applies). */
  private async push(c: Conn, f: Frame): Promise<void> {
    const url = typeof f.url === "string" ? f.url : "";
    const checked = this.o.pushHosts.check(url);
    if (!checked.ok) {
      this.refuse(c, "push_host_not_allowed");
      this.m.pushes.inc({ result: "host_not_allowed" });
      this.send(c, "push-res", { re: f.id, ok: false, reason: "host_not_allowed" });
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((f.headers as Record<string, unknown>) ?? {})) {
      if (/^(authorization|ttl|urgency|content-encoding|content-type|topic)$/i.test(k) && typeof v === "string" && !/[\r\n]/.test(v)) headers[k] = v;
    }
    try {
      const res = await this.fetchImpl(checked.url.href, {
        method: "POST",
        headers,
        body: Buffer.from(typeof f.body === "string" ? f.body : "", "base64"),
        redirect: "manual",
        signal: AbortSignal.timeout(this.o.pushTimeoutMs),
      });
      void res.body?.cancel().catch(() => {});
      this.o.audit({ type: "switch.push", appliance: c.name!, host: checked.url.host, status: res.status });
      this.m.pushes.inc({ result: res.status >= 200 && res.status <= 599 ? `${Math.floor(res.status / 100)}xx` : "other" });
      this.send(c, "push-res", { re: f.id, ok: true, status: res.status });
    } catch (err) {
      const name = (err as { name?: string } | null)?.name;
      this.m.pushes.inc({ result: name === "TimeoutError" ? "timeout" : "network" });
      this.send(c, "push-res", { re: f.id, ok: false, reason: name === "TimeoutError" ? "timeout" : "network" });
    }
  }

  /** The approver app's own files (page, script, manifest, worker, icons), served by the relay itself. */
  private appFiles?: Hono;

  /**
   * The relay's public HTTP surface: the approval pages (forwarded to the appliance that owns the
   * link), their stylesheet, the approver app's files and its API (forwarded to the one connected
   * appliance), and health.
   */
  async fetch(req: Request, env: { remoteAddress: string }): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/healthz" || url.pathname === "/readyz") return new Response("ok\n", { headers: { "Content-Type": "text/plain" } });
    if (url.pathname === APPROVAL_CSS_PATH) return new Response(APPROVAL_CSS, { headers: { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=86400" } });
    if (APP_API_PATH.test(url.pathname)) return this.appApi(req, url, env);
    if (url.pathname === "/app" || url.pathname.startsWith("/app/")) {
      if (!this.appFiles) {
        this.appFiles = new Hono();
        appPageRoutes(this.appFiles as never, undefined as never);
      }
      return this.appFiles.fetch(req);
    }
    const m = /^\/ml\/([^/]+)$/.exec(url.pathname);
    if (!m || (req.method !== "GET" && req.method !== "POST")) return new Response("Not found\n", { status: 404, headers: { "Content-Type": "text/plain" } });
    const token = m[1]!;
    const owner = LINK_TOKEN_PATTERN.test(token) ? this.o.db.linkOwner(hashLinkToken(token), this.now()) : undefined;
    if (!owner) return html((<InvalidLinkPage />).toString(), 404);
    const c = this.conns.get(owner);
    if (!c) return html(TRY_AGAIN, 503);
    const body = req.method === "POST" ? await req.text() : "";
    if (body.length > 8 * 1024) return new Response("Too large\n", { status: 413 });
    const answer = await this.forward(c, { method: req.method, path: url.pathname, content_type: req.headers.get("content-type") ?? "", body, address: env.remoteAddress });
    if (!answer) return html(TRY_AGAIN, 503);
    return answer;
  }

  /**
   * The approver app's API, forwarded to the appliance it belongs to: an enrolment call to the
   * appliance that announced its code, every other call to the appliance that enrolled the device
   * it names (Portcullis-Device). A call the relay cannot route is answered 404 and counted; it is
   * never sent to another appliance. The event stream is not relayed; the app then polls.
   */
  private async appApi(req: Request, url: URL, env: { remoteAddress: string }): Promise<Response> {
    const json = (status: number, error: string) => new Response(JSON.stringify({ error }), { status, headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } });
    // Every version of the device protocol has the same paths under its prefix and is routed alike.
    const prefix = APP_API_PATH.exec(url.pathname)![1]!;
    const events = url.pathname === `${prefix}/events`;
    const enrol = url.pathname === `${prefix}/devices`;
    if (events && req.method !== "GET") return json(405, "method not allowed");
    if (!["GET", "POST", "PUT", "DELETE"].includes(req.method)) return json(405, "method not allowed");
    const body = req.method === "GET" ? "" : await req.text();
    if (body.length > 8 * 1024) return json(413, "body too large");
    const now = this.now();
    let owner: string | undefined;
    let enrolment: string | undefined;
    if (enrol && req.method === "POST") {
      let code: unknown;
      try {
        code = (JSON.parse(body) as { enrolment?: unknown } | null)?.enrolment;
      } catch {
        code = undefined;
      }
      if (typeof code === "string" && ENROLMENT_CODE.test(code)) {
        enrolment = hashEnrolmentCode(code);
        owner = this.o.db.enrolmentOwner(enrolment, now);
      }
    } else {
      const device = req.headers.get("portcullis-device") ?? "";
      owner = DEVICE_ID.test(device) ? this.o.db.deviceOwner(device) : undefined;
    }
    if (!owner) {
      this.counters.appUnrouted++;
      return json(404, enrolment !== undefined || enrol ? "unknown enrolment code" : "unknown device");
    }
    const c = this.conns.get(owner);
    if (!c) return json(503, "the appliance is not connected");
    const headers: Record<string, string> = {};
    for (const k of APP_REQUEST_HEADERS) {
      const v = req.headers.get(k);
      if (v !== null) headers[k] = v;
    }
    if (events) {
      if (c.streams.size >= MAX_STREAMS_PER_APPLIANCE) return json(429, `too many event streams; poll ${prefix}/requests`);
      return (await this.stream(c, { method: "GET", path: url.pathname + url.search, headers, address: env.remoteAddress })) ?? json(503, "the appliance did not answer");
    }
    const answer = await this.forward(c, { method: req.method, path: url.pathname + url.search, headers, body, address: env.remoteAddress });
    if (!answer) return json(503, "the appliance did not answer");
    if (enrolment !== undefined && answer.status === 201) {
      // The code is spent; the device it made is routed to this appliance from now on.
      this.o.db.forgetEnrolment(enrolment);
      let id: unknown;
      try {
        id = (JSON.parse(await answer.clone().text()) as { device?: unknown } | null)?.device;
      } catch {
        id = undefined;
      }
      if (typeof id !== "string" || !DEVICE_ID.test(id) || !this.o.db.claimDevice(id, owner, now)) {
        this.refuse(c, "foreign_device");
        return json(502, "the appliance's answer was refused");
      }
    }
    return answer;
  }

  /**
   * Opens the approver app's event stream on the appliance and relays it: the phone's response
   * stays open while the appliance sends the stream's text (`stream-data`), and ends with its
   * `stream-end`, when the appliance's connection goes, or (`stream-close` to the appliance) when
   * the phone leaves. Undefined when the appliance does not answer in time.
   */
  private async stream(c: Conn, request: Record<string, unknown>): Promise<Response | undefined> {
    let ctrl!: ReadableStreamDefaultController<Uint8Array>;
    let id = 0;
    const body = new ReadableStream<Uint8Array>({
      start: (k) => {
        ctrl = k;
      },
      cancel: () => {
        if (c.streams.get(id) === ctrl) {
          c.streams.delete(id);
          if (this.conns.get(c.name!) === c) this.send(c, "stream-close", { re: id });
        }
      },
    });
    const answer = await new Promise<Frame | undefined>((resolve) => {
      id = this.send(c, "stream", request);
      // Registered before any stream-data can arrive (frames are handled in order).
      c.streams.set(id, ctrl);
      const timer = setTimeout(() => {
        c.pending.delete(id);
        resolve(undefined);
      }, TUNNEL_TIMEOUT_MS);
      c.pending.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
    });
    const headers = new Headers();
    const got = (answer?.headers ?? {}) as Record<string, unknown>;
    for (const k of FORWARDED_HEADERS) if (typeof got[k] === "string") headers.set(k, got[k] as string);
    if (!answer || answer.status !== 200 || answer.streaming !== true) {
      c.streams.delete(id);
      if (!answer || typeof answer.status !== "number" || answer.status < 200 || answer.status > 599) return undefined;
      return new Response(typeof answer.body === "string" ? answer.body : "", { status: answer.status, headers });
    }
    this.counters.pagesForwarded++;
    this.streamsOpened++;
    return new Response(body, { status: 200, headers });
  }

  /** Sends one request to an appliance and turns its answer into a Response (undefined: no answer in time). */
  private async forward(c: Conn, request: Record<string, unknown>): Promise<Response | undefined> {
    const answer = await new Promise<Frame | undefined>((resolve) => {
      const id = this.send(c, "http", request);
      const timer = setTimeout(() => {
        c.pending.delete(id);
        resolve(undefined);
      }, TUNNEL_TIMEOUT_MS);
      c.pending.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
    });
    if (!answer || typeof answer.status !== "number" || answer.status < 200 || answer.status > 599) return undefined;
    this.counters.pagesForwarded++;
    const headers = new Headers();
    const got = (answer.headers ?? {}) as Record<string, unknown>;
    for (const k of FORWARDED_HEADERS) if (typeof got[k] === "string") headers.set(k, got[k] as string);
    const status = answer.status;
    return new Response(status === 204 || status === 304 ? null : typeof answer.body === "string" ? answer.body : "", { status, headers });
  }
}
