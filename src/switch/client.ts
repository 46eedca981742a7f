// The appliance's side of the switch: one outbound WebSocket to the relay, kept open with back-off
// and jitter (capped at 30 s), failing over through `[switch] urls` in order and returning to the
// primary once it answers again. Messages, push and page answers all travel over it; the appliance
// opens no inbound port for them.

import type { KeyObject } from "node:crypto";
import type { AuditEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import { connectWebSocket, type WsPeer } from "../runtime/websocket.ts";
import { backoffMs, CLOSE_REMOVED, CLOSE_UNAUTHORIZED, FrameCounter, MAX_FRAME_BYTES, parseFrame, signAuth, SWITCH_PATH, type Frame } from "./protocol.ts";

/** A page request the relay forwards from a phone. */
export interface TunnelRequest {
  method: string;
  /** Path and query. */
  path: string;
  contentType: string;
  /** The approver app's signature headers (lower-case names), for its API. */
  headers: Record<string, string>;
  body: string;
  address: string;
}

export interface TunnelResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface SwitchClientOptions {
  /** Relay base URLs (https:), primary first. */
  urls: readonly string[];
  /** PEM CA(s) the relays' certificates must chain to. */
  ca: string;
  name: string;
  privateKey: KeyObject;
  /** First connection only (`switch join`): the enrolment token and the public key it registers. */
  enrol?: { token: string; publicKey: string };
  /** Answers a page request forwarded by the relay (the public app's fetch). */
  handleHttp?(req: TunnelRequest): Promise<TunnelResponse>;
  /** Answers the approver app's event stream forwarded by the relay (the public app's fetch, unread). */
  openStream?(req: TunnelRequest): Promise<Response>;
  /**
   * The approver app's live enrolment codes (their hashes and expiry): each is announced to the
   * relay in use, which then routes the enrolment call that carries the code to this appliance.
   */
  enrolments?(): Promise<Array<{ codeHash: string; expiresAt: number }>>;
  /** How often the live enrolment codes are read and new ones announced (ms). */
  enrolmentCheckMs?: number;
  audit(event: AuditEvent): void;
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  /** How often, while on a secondary, the primary is tried again (ms). */
  primaryRetryMs?: number;
  /** A request sent over the relay waits this long for its answer (ms). */
  requestTimeoutMs?: number;
  random?: () => number;
  /** One attempt only, no reconnect (`switch join`). */
  once?: boolean;
  /** A connection must authenticate this long after it starts, and answer a heartbeat within it (ms). */
  deadlineMs?: number;
  /** How often a heartbeat is sent on an idle connection (ms). */
  heartbeatMs?: number;
}

export type SwitchState = "connecting" | "connected" | "disconnected";

/** The relay refused this appliance (not enrolled, removed, wrong token): retrying will not help until an administrator acts. */
export class SwitchRefused extends Error {}

interface Link {
  url: string;
  index: number;
  peer: WsPeer;
  out: FrameCounter;
  lastIn: number;
  ready: boolean;
  publicUrl?: string;
  pending: Map<number, (f: Frame | undefined) => void>;
  /** Enrolment code hashes announced on this connection. */
  announced: Set<string>;
  /** Event streams relayed on this connection, by the relay's frame id. */
  streams: Map<number, { cancel(): Promise<void> }>;
}

/** Event-stream text sent in one frame at most (well under the frame limit once JSON-escaped). */
const STREAM_CHUNK_CHARS = 16 * 1024;

/** Enrolment codes announced in one frame at most (each is 64 hex characters and an expiry). */
const ENROLMENTS_PER_FRAME = 200;

function wsUrl(base: string): string {
  return base.replace(/^http/i, "ws").replace(/\/+$/, "") + SWITCH_PATH;
}

export class SwitchClient {
  private active?: Link;
  private probe?: Link;
  private attempt = 0;
  /** The relay last connected to: a connection to another one is a failover. */
  private lastUrl?: string;
  private stopped = true;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private primaryTimer?: ReturnType<typeof setInterval>;
  private readonly waiters: Array<() => void> = [];
  /** How many times the connection was established (tests, metrics). */
  connects = 0;
  lastCloseCode = 0;
  lastCloseReason = "";

  constructor(private readonly o: SwitchClientOptions) {
    if (o.urls.length === 0) throw new TypeError("switch: no relay URL");
  }

  get state(): SwitchState {
    if (this.active?.ready) return "connected";
    return this.stopped ? "disconnected" : "connecting";
  }

  /** The URL of the relay in use, and its public_url (links are built from it). */
  get url(): string | undefined {
    return this.active?.ready ? this.active.url : undefined;
  }

  get publicUrl(): string | undefined {
    return this.active?.ready ? this.active.publicUrl : undefined;
  }

  /** Index in `urls` of the relay in use; -1 while none. */
  get urlIndex(): number {
    return this.active?.ready ? this.active.index : -1;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect(0);
    if (this.o.urls.length > 1) {
      this.primaryTimer = setInterval(() => this.tryPrimary(), this.o.primaryRetryMs ?? 30_000);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.primaryTimer);
    this.active?.peer.close(1000, "stopping");
    this.probe?.peer.close(1000, "stopping");
    this.active = undefined;
    this.probe = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when connected (true) or after `ms` (false). */
  waitConnected(ms: number): Promise<boolean> {
    if (this.state === "connected") return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(this.state === "connected");
      }, ms);
      const done = () => {
        clearTimeout(t);
        resolve(this.state === "connected");
      };
      this.waiters.push(done);
    });
  }

  /**
   * Sends a request frame and resolves with the relay's answer (the frame with `re` = its id), or
   * undefined when no relay is connected, the connection drops, or the answer does not come in time.
   */
  request(t: string, fields: Record<string, unknown>, timeoutMs = this.o.requestTimeoutMs ?? 15_000): Promise<Frame | undefined> {
    const link = this.active;
    if (!link?.ready) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const { id, text } = link.out.frame(t, fields);
      if (text.length > MAX_FRAME_BYTES) return resolve(undefined);
      const timer = setTimeout(() => {
        link.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      link.pending.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      link.peer.send(text);
    });
  }

  private connect(index: number): void {
    if (this.stopped) return;
    this.open(index, (link) => this.adopt(link), (link, code, reason) => this.lost(link, code, reason));
  }

  /** While on a secondary, try the primary; adopt it when it authenticates. */
  private tryPrimary(): void {
    if (this.stopped || this.probe || !this.active?.ready || this.active.index === 0) return;
    this.probe = this.open(
      0,
      (link) => {
        this.probe = undefined;
        const from = this.active;
        this.adopt(link);
        if (from) this.retire(from);
      },
      (l, code, reason) => {
        // A probe that failed is forgotten; one adopted as the active connection was lost.
        if (this.probe === l) this.probe = undefined;
        else this.lost(l, code, reason);
      },
    );
  }

  private retire(link: Link): void {
    for (const r of link.pending.values()) r(undefined);
    link.pending.clear();
    link.ready = false;
    link.peer.close(1000, "back to primary");
  }

  private adopt(link: Link): void {
    // A relay that vanished without closing (a cut network) is noticed by a missed heartbeat.
    const beat = setInterval(() => {
      if (!link.ready) return clearInterval(beat);
      void this.request("ping", {}, this.o.deadlineMs ?? 10_000).then((pong) => {
        if (!pong && link.ready && this.active === link) link.peer.close(4408, "heartbeat missed");
      });
    }, this.o.heartbeatMs ?? 20_000);
    if (this.o.enrolments) {
      void this.announce(link);
      const check = setInterval(() => {
        if (!link.ready) return clearInterval(check);
        if (this.active === link) void this.announce(link);
      }, this.o.enrolmentCheckMs ?? 2000);
    }
    this.active = link;
    this.attempt = 0;
    this.connects++;
    this.o.audit({ type: "switch.connected", url: link.url, name: this.o.name });
    if (this.lastUrl !== undefined && this.lastUrl !== link.url) this.o.audit({ type: "switch.failover", from: this.lastUrl, to: link.url });
    this.lastUrl = link.url;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Tells the relay about enrolment codes it has not heard of on this connection. */
  private async announce(link: Link): Promise<void> {
    let live: Array<{ codeHash: string; expiresAt: number }>;
    try {
      live = await this.o.enrolments!();
    } catch (err) {
      this.o.log("warn", "switch.enrolments_failed", { error: (err as Error)?.name ?? "error" });
      return;
    }
    const fresh = live.filter((e) => !link.announced.has(e.codeHash)).slice(0, ENROLMENTS_PER_FRAME);
    if (fresh.length === 0 || !link.ready) return;
    for (const e of fresh) link.announced.add(e.codeHash);
    link.peer.send(link.out.frame("enrolments", { codes: fresh.map((e) => ({ hash: e.codeHash, expires: e.expiresAt })) }).text);
  }

  private lost(link: Link, code: number, reason: string): void {
    this.lastCloseCode = code;
    this.lastCloseReason = reason;
    const wasActive = this.active === link;
    if (!wasActive && this.active !== undefined) return; // a retired or failed probe connection
    if (link.ready) this.o.audit({ type: "switch.disconnected", url: link.url, code, reason: reason.slice(0, 100) });
    this.active = undefined;
    if (this.stopped) return;
    if (this.o.once) return this.stop();
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_REMOVED) {
      this.o.log("error", "switch.refused", { url: link.url, code, detail: "the relay refused this appliance; run portcullis switch join again with a new token" });
    }
    // After a connection was lost or failed, the next URL is tried (wrapping to the primary).
    const next = (link.index + 1) % this.o.urls.length;
    const delay = link.ready && next !== link.index ? 0 : backoffMs(this.attempt++, this.o.random);
    this.retryTimer = setTimeout(() => this.connect(next), delay);
  }

  private open(index: number, onReady: (link: Link) => void, onClose: (link: Link, code: number, reason: string) => void): Link {
    const url = this.o.urls[index]!;
    let closed = false;
    const link: Link = {
      url,
      index,
      out: new FrameCounter(),
      lastIn: 0,
      ready: false,
      pending: new Map(),
      announced: new Set(),
      streams: new Map(),
      peer: undefined as unknown as WsPeer,
    };
    // A connect that hangs (packets dropped on the way) counts as a failure after the deadline.
    const deadline = setTimeout(() => {
      if (!link.ready) link.peer.close(4408, "no answer");
    }, this.o.deadlineMs ?? 10_000);
    link.peer = connectWebSocket(wsUrl(url), {
      ca: this.o.ca,
      maxPayloadBytes: MAX_FRAME_BYTES,
      onOpen: () => {},
      onMessage: (data) => {
        const f = parseFrame(data, link.lastIn);
        if (!f) {
          this.o.log("warn", "switch.bad_frame", { url });
          link.peer.close(4400, "bad frame");
          return;
        }
        link.lastIn = f.id;
        this.frame(link, f, onReady);
      },
      onClose: (code, reason) => {
        clearTimeout(deadline);
        if (closed) return;
        closed = true;
        for (const r of link.pending.values()) r(undefined);
        link.pending.clear();
        for (const reader of link.streams.values()) void reader.cancel().catch(() => {});
        link.streams.clear();
        onClose(link, code, reason);
        link.ready = false;
      },
    });
    return link;
  }

  private frame(link: Link, f: Frame, onReady: (link: Link) => void): void {
    if (!link.ready) {
      if (f.t === "challenge" && typeof f.nonce === "string" && typeof f.public_url === "string") {
        link.publicUrl = f.public_url;
        const sig = signAuth(this.o.privateKey, f.nonce, f.public_url, this.o.name);
        const { text } = link.out.frame("hello", { name: this.o.name, sig, ...(this.o.enrol ? { enrol: { token: this.o.enrol.token, public_key: this.o.enrol.publicKey } } : {}) });
        link.peer.send(text);
      } else if (f.t === "welcome") {
        link.ready = true;
        onReady(link);
      } else {
        link.peer.close(4400, "unexpected frame");
      }
      return;
    }
    if (f.t === "http") {
      void this.tunnel(link, f);
      return;
    }
    if (f.t === "stream") {
      void this.stream(link, f);
      return;
    }
    if (f.t === "stream-close") {
      const reader = typeof f.re === "number" ? link.streams.get(f.re) : undefined;
      if (reader) {
        link.streams.delete(f.re!);
        void reader.cancel().catch(() => {});
      }
      return;
    }
    if (typeof f.re === "number") {
      const r = link.pending.get(f.re);
      if (r) {
        link.pending.delete(f.re);
        r(f);
      }
    }
  }

  /**
   * The approver app's event stream for the relay: the answer's status and headers, then its text
   * in `stream-data` frames as the appliance writes it, then `stream-end`. The relay's
   * `stream-close` (the phone went away) or a lost connection ends it.
   */
  private async stream(link: Link, f: Frame): Promise<void> {
    const send = (t: string, fields: Record<string, unknown>) => {
      if (link.ready) link.peer.send(link.out.frame(t, { re: f.id, ...fields }).text);
    };
    const path = typeof f.path === "string" ? f.path : "";
    if (!this.o.openStream || !/^\/app\/api\/v[12]\/events(?:\?[^\s#]*)?$/.test(path) || f.method !== "GET") return send("stream-res", { status: 404, headers: {}, body: "" });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((f.headers as Record<string, unknown>) ?? {})) {
      if (/^portcullis-(device|time|signature)$/.test(k) && typeof v === "string") headers[k] = v;
    }
    let res: Response;
    try {
      res = await this.o.openStream({ method: "GET", path, contentType: "", headers, body: "", address: typeof f.address === "string" ? f.address : "" });
    } catch {
      return send("stream-res", { status: 500, headers: {}, body: "" });
    }
    const out: Record<string, string> = {};
    res.headers.forEach((v, k) => (out[k] = v));
    if (res.status !== 200 || !res.body || !link.ready) {
      const body = await res.text().catch(() => "");
      return send("stream-res", { status: res.status, headers: out, body: body.slice(0, STREAM_CHUNK_CHARS) });
    }
    const reader = res.body.getReader();
    link.streams.set(f.id, reader);
    send("stream-res", { status: 200, headers: out, streaming: true });
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !link.streams.has(f.id)) break;
        const text = dec.decode(value, { stream: true });
        for (let at = 0; at < text.length; at += STREAM_CHUNK_CHARS) send("stream-data", { data: text.slice(at, at + STREAM_CHUNK_CHARS) });
      }
    } catch {
      // The stream was cancelled (the relay closed it, or the connection went).
    }
    if (link.streams.delete(f.id)) send("stream-end", {});
  }

  private async tunnel(link: Link, f: Frame): Promise<void> {
    let res: TunnelResponse = { status: 404, headers: {}, body: "" };
    const path = typeof f.path === "string" ? f.path : "";
    const method = typeof f.method === "string" ? f.method : "";
    // Only the approval pages and the approver app's API (not its event stream) are answered for the
    // relay; everything else on the appliance stays unreachable through it.
    const page = /^\/ml\/[A-Za-z0-9_-]{1,64}$/.test(path) && (method === "GET" || method === "POST");
    const api = /^\/app\/api\/v[12]\/(?!events(?:$|\?))[A-Za-z0-9_/-]*(?:\?[^\s#]*)?$/.test(path) && ["GET", "POST", "PUT", "DELETE"].includes(method);
    if (this.o.handleHttp && (page || api)) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries((f.headers as Record<string, unknown>) ?? {})) {
        if (/^portcullis-(device|time|signature)$/.test(k) && typeof v === "string") headers[k] = v;
      }
      try {
        res = await this.o.handleHttp({
          method,
          path,
          contentType: typeof f.content_type === "string" ? f.content_type : typeof (f.headers as Record<string, unknown>)?.["content-type"] === "string" ? String((f.headers as Record<string, unknown>)["content-type"]) : "",
          headers,
          body: typeof f.body === "string" ? f.body : "",
          address: typeof f.address === "string" ? f.address : "",
        });
      } catch {
        res = { status: 500, headers: {}, body: "" };
      }
    }
    if (!link.ready) return;
    const { text } = link.out.frame("http-res", { re: f.id, status: res.status, headers: res.headers, body: res.body });
    link.peer.send(text.length > MAX_FRAME_BYTES ? link.out.frame("http-res", { re: f.id, status: 502, headers: {}, body: "" }).text : text);
  }
}
