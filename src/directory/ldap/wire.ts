// A lean LDAPv3 message codec (RFC 4511, BER per X.690) for the two operations of a password login:
// the user search and the user's simple bind, plus what Bun's own sockets (native.ts) need around
// them: the login search connections' service bind, StartTLS and unbind. Everything else (group
// lookups, password changes, diagnostics) stays on ldapts.
//
// A WireChannel rides on a WireTransport: either Bun's own socket (native.ts: the login pools, TLS
// and StartTLS verified there) or the socket ldapts opened (connection.ts, where Bun's sockets are
// not available: one socket per client), whose "data" events it then takes over. It cuts the byte
// stream into LDAPMessages, answers the ones whose message ID it issued (IDs from WIRE_ID_BASE up,
// far above the ones ldapts counts from 1 on a connection renewed after 1,000 operations) and hands
// every other message to ldapts's own handler unchanged (on a native socket there is none, and
// such a message fails the connection).
//
// Every BER length is checked against the bytes that enclose it; indefinite lengths, lengths of
// more than 4 bytes, a message over MAX_MESSAGE_BYTES, an unknown operation for one of our IDs or
// any other malformed reply fail the connection (the socket is destroyed, every operation on it
// fails with a WireError, the pools discard it) with a one-line reason. A reply that does not come
// within the timeout fails the operation the same way ("… timed out"). A WireError is a network
// error to the pools (it is not an ldapts ResultCodeError); an LDAP result other than success is
// returned (bind) or thrown as ldapts's ResultCodeError for the code (search), as ldapts does.

import type net from "node:net";
import { StatusCodeParser, type Client, type Entry } from "ldapts";
import { markDelivery } from "../../runtime/udp.ts";

/** First message ID the codec issues on a connection (ldapts counts from 1 and never gets near it). */
export const WIRE_ID_BASE = 0x40000000;
const MAX_ID = 0x7fffffff;
/** Largest LDAPMessage accepted from a server (a user entry with the requested attributes is a few hundred bytes). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** draft-behera-ldap-password-policy §6: the password policy request/response control. */
export const PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1";

/** The connection failed (malformed or oversized reply, timeout, socket closed): a network-level error. */
export class WireError extends Error {
  override name = "WireError";
}

/** Password policy response control (draft-behera §6.2), as ldapts's PasswordPolicyControl reports it. */
export interface PpolicyValue {
  timeBeforeExpiration?: number;
  graceAuthNsRemaining?: number;
  error?: number;
}

/** A BindResponse: the result code (0 success, 49 invalidCredentials, …), the diagnostic text and the ppolicy control if any. */
export interface BindReply {
  code: number;
  diagnostic: string;
  ppolicy: PpolicyValue | undefined;
}

export interface WireSearchOptions {
  scope: "base" | "one" | "sub";
  /** An RFC 4515 filter string (values already escaped). */
  filter: string;
  sizeLimit?: number;
  /** Seconds the server may spend (0: no limit); ldapts's default of 10. */
  timeLimit?: number;
  attributes: readonly string[];
  /** Attributes whose values are returned as Buffers (binary: objectGUID, objectSid, …). */
  explicitBufferAttributes?: readonly string[];
}

// ── BER writing ───────────────────────────────────────────────────────────────────────────────────

const utf8 = new TextEncoder();
const utf8Fatal = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

/** A BER (definite-length) writer. Constructed values are opened with start() and closed with end(). */
export class BerOut {
  #b = new Uint8Array(256);
  #n = 0;
  readonly #open: number[] = [];

  #room(k: number): Uint8Array {
    if (this.#n + k > this.#b.length) {
      const grown = new Uint8Array(Math.max(this.#b.length * 2, this.#n + k));
      grown.set(this.#b.subarray(0, this.#n));
      this.#b = grown;
    }
    return this.#b;
  }

  start(tag: number): this {
    const b = this.#room(2);
    b[this.#n++] = tag;
    b[this.#n++] = 0;
    this.#open.push(this.#n);
    return this;
  }

  end(): this {
    const at = this.#open.pop();
    if (at === undefined) throw new TypeError("BER: end() without start()");
    const n = this.#n - at;
    if (n < 0x80) {
      this.#b[at - 1] = n;
      return this;
    }
    // Long form: move the content right to make room for the length octets.
    const lo = lengthOctets(n);
    const b = this.#room(lo.length - 1);
    b.copyWithin(at - 1 + lo.length, at, this.#n);
    b.set(lo, at - 1);
    this.#n += lo.length - 1;
    return this;
  }

  octets(tag: number, v: Uint8Array | string): this {
    const bytes = typeof v === "string" ? utf8.encode(v) : v;
    const b = this.#room(6 + bytes.length);
    b[this.#n++] = tag;
    if (bytes.length < 0x80) b[this.#n++] = bytes.length;
    else for (const x of lengthOctets(bytes.length)) b[this.#n++] = x;
    b.set(bytes, this.#n);
    this.#n += bytes.length;
    return this;
  }

  /** A non-negative INTEGER or ENUMERATED (two's complement, minimal). */
  int(tag: number, v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > MAX_ID) throw new TypeError("BER: integer out of range");
    const len = v < 0x80 ? 1 : v < 0x8000 ? 2 : v < 0x800000 ? 3 : v < 0x80000000 ? 4 : 5;
    const b = this.#room(2 + len);
    b[this.#n++] = tag;
    b[this.#n++] = len;
    for (let k = len - 1; k >= 0; k--) b[this.#n++] = k >= 4 ? 0 : (v >>> (8 * k)) & 0xff;
    return this;
  }

  bool(tag: number, v: boolean): this {
    const b = this.#room(3);
    b[this.#n++] = tag;
    b[this.#n++] = 1;
    b[this.#n++] = v ? 0xff : 0;
    return this;
  }

  bytes(): Buffer {
    if (this.#open.length > 0) throw new TypeError("BER: unclosed constructed value");
    return Buffer.from(this.#b.buffer, this.#b.byteOffset, this.#n);
  }
}

function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | out.length, ...out];
}

const SCOPES = { base: 0, one: 1, sub: 2 } as const;

/** LDAPMessage { messageID, BindRequest { version 3, name, simple password } [, controls { ppolicy }] }. */
export function encodeBindRequest(id: number, dn: string, password: string, { ppolicy = false } = {}): Buffer {
  const w = new BerOut().start(0x30).int(0x02, id);
  w.start(0x60).int(0x02, 3).octets(0x04, dn).octets(0x80, password).end();
  // criticality FALSE written out, as ldapts does (servers accept both forms)
  if (ppolicy) w.start(0xa0).start(0x30).octets(0x04, PPOLICY_OID).bool(0x01, false).end().end();
  return w.end().bytes();
}

/** LDAPMessage { messageID, ExtendedRequest { requestName } } (no requestValue: StartTLS, RFC 4511 §4.14.1). */
export function encodeExtendedRequest(id: number, oid: string): Buffer {
  return new BerOut().start(0x30).int(0x02, id).start(0x77).octets(0x80, oid).end().end().bytes();
}

/** LDAPMessage { messageID, UnbindRequest } (RFC 4511 §4.3). */
export function encodeUnbindRequest(id: number): Buffer {
  return new BerOut().start(0x30).int(0x02, id).octets(0x42, new Uint8Array(0)).end().bytes();
}

/** LDAPMessage { messageID, SearchRequest { base, scope, derefAliases never, sizeLimit, timeLimit, typesOnly false, filter, attributes } }. */
export function encodeSearchRequest(id: number, baseDN: string, o: WireSearchOptions): Buffer {
  const w = new BerOut().start(0x30).int(0x02, id);
  w.start(0x63)
    .octets(0x04, baseDN)
    .int(0x0a, SCOPES[o.scope])
    .int(0x0a, 0)
    .int(0x02, o.sizeLimit ?? 0)
    .int(0x02, o.timeLimit ?? 10)
    .bool(0x01, false);
  encodeFilter(w, o.filter);
  w.start(0x30);
  for (const a of o.attributes) w.octets(0x04, a);
  w.end().end();
  return w.end().bytes();
}

// ── RFC 4515 filter strings → RFC 4511 §4.5.1 Filter ─────────────────────────────────────────────

/** A filter string this codec does not parse (the caller may hand it to ldapts instead). */
export class FilterSyntaxError extends Error {
  override name = "FilterSyntaxError";
}

/** Encodes an RFC 4515 filter string into `w`. Throws FilterSyntaxError for anything malformed. */
export function encodeFilter(w: BerOut, filter: string): void {
  const p = { s: filter, i: 0, depth: 0 };
  parseFilter(p, w);
  if (p.i !== filter.length) throw new FilterSyntaxError("filter: text after the closing parenthesis");
}

type FilterCursor = { s: string; i: number; depth: number };

function parseFilter(p: FilterCursor, w: BerOut): void {
  if (p.s[p.i] !== "(") throw new FilterSyntaxError("filter: '(' expected");
  if (++p.depth > 32) throw new FilterSyntaxError("filter: nested too deeply");
  p.i++;
  const c = p.s[p.i];
  if (c === "&" || c === "|") {
    p.i++;
    w.start(c === "&" ? 0xa0 : 0xa1);
    let n = 0;
    while (p.s[p.i] === "(") {
      parseFilter(p, w);
      n++;
    }
    if (n === 0) throw new FilterSyntaxError("filter: empty and/or");
    w.end();
  } else if (c === "!") {
    p.i++;
    w.start(0xa2);
    parseFilter(p, w);
    w.end();
  } else {
    parseItem(p, w);
  }
  if (p.s[p.i] !== ")") throw new FilterSyntaxError("filter: ')' expected");
  p.i++;
  p.depth--;
}

const ATTR = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$/;
const RULE = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$/;

function parseItem(p: FilterCursor, w: BerOut): void {
  const close = findClose(p);
  const item = p.s.slice(p.i, close);
  p.i = close;
  const eq = item.indexOf("=");
  if (eq <= 0) throw new FilterSyntaxError("filter: item without '='");
  const lhs = item.slice(0, eq);
  const rhs = item.slice(eq + 1);
  const last = lhs[lhs.length - 1];
  if (last === ":") return extensible(lhs.slice(0, -1), rhs, w);
  if (last === "~" || last === ">" || last === "<") {
    const attr = lhs.slice(0, -1);
    if (!ATTR.test(attr)) throw new FilterSyntaxError("filter: bad attribute description");
    w.start(last === "~" ? 0xa8 : last === ">" ? 0xa5 : 0xa6).octets(0x04, attr).octets(0x04, unescapeValue(rhs)).end();
    return;
  }
  if (!ATTR.test(lhs)) throw new FilterSyntaxError("filter: bad attribute description");
  if (rhs === "*") {
    w.octets(0x87, lhs);
    return;
  }
  if (!rhs.includes("*")) {
    w.start(0xa3).octets(0x04, lhs).octets(0x04, unescapeValue(rhs)).end();
    return;
  }
  // substring: [initial] *(any *) [final]
  const parts = rhs.split("*");
  w.start(0xa4).octets(0x04, lhs).start(0x30);
  parts.forEach((part, k) => {
    if (part === "") {
      if (k > 0 && k < parts.length - 1) throw new FilterSyntaxError("filter: empty substring");
      return;
    }
    w.octets(k === 0 ? 0x80 : k === parts.length - 1 ? 0x82 : 0x81, unescapeValue(part));
  });
  w.end().end();
}

function extensible(lhs: string, rhs: string, w: BerOut): void {
  // attr [":dn"] [":" rule] | [":dn"] ":" rule  (the trailing ":" of ":=" already removed)
  const parts = lhs.split(":");
  const attr = parts.shift()!;
  let dn = false;
  let rule: string | undefined;
  for (const part of parts) {
    if (part.toLowerCase() === "dn" && !dn && rule === undefined) dn = true;
    else if (rule === undefined && RULE.test(part)) rule = part;
    else throw new FilterSyntaxError("filter: bad extensible match");
  }
  if (attr !== "" && !ATTR.test(attr)) throw new FilterSyntaxError("filter: bad attribute description");
  if (attr === "" && rule === undefined) throw new FilterSyntaxError("filter: extensible match without attribute or rule");
  w.start(0xa9);
  if (rule !== undefined) w.octets(0x81, rule);
  if (attr !== "") w.octets(0x82, attr);
  w.octets(0x83, unescapeValue(rhs));
  if (dn) w.bool(0x84, true);
  w.end();
}

/** Index of the ')' closing the current item; a value may not hold '(' or ')' unescaped. */
function findClose(p: FilterCursor): number {
  for (let j = p.i; j < p.s.length; j++) {
    const ch = p.s[j];
    if (ch === ")") return j;
    if (ch === "(") break;
  }
  throw new FilterSyntaxError("filter: unbalanced parentheses");
}

/** RFC 4515 §3 assertion value: UTF-8 with "\XX" escapes → bytes. */
function unescapeValue(v: string): Uint8Array {
  if (!v.includes("\\")) return utf8.encode(v);
  const out: number[] = [];
  for (let j = 0; j < v.length; ) {
    const ch = v[j]!;
    if (ch === "\\") {
      const hex = v.slice(j + 1, j + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new FilterSyntaxError("filter: bad escape in value");
      out.push(parseInt(hex, 16));
      j += 3;
      continue;
    }
    const cp = v.codePointAt(j)!;
    const step = cp > 0xffff ? 2 : 1;
    for (const b of utf8.encode(v.slice(j, j + step))) out.push(b);
    j += step;
  }
  return Uint8Array.from(out);
}

// ── BER reading ───────────────────────────────────────────────────────────────────────────────────

/** A bounds-checked BER reader over b[pos, end). Every method throws WireError on malformed input. */
export class BerIn {
  /** Start and end of the content of the value last read with tlv(). */
  start = 0;
  end = 0;
  constructor(
    readonly b: Uint8Array,
    public pos: number,
    public limit: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.limit;
  }

  peek(): number {
    if (this.pos >= this.limit) throw new WireError("LDAP reply truncated");
    return this.b[this.pos]!;
  }

  /** Reads a tag and a definite length; the content is [start, end). Checks the tag when given. */
  tlv(expected?: number): number {
    const tag = this.peek();
    if (expected !== undefined && tag !== expected) throw new WireError(`LDAP reply malformed: tag 0x${tag.toString(16)} where 0x${expected.toString(16)} was expected`);
    if ((tag & 0x1f) === 0x1f) throw new WireError("LDAP reply malformed: multi-byte tag");
    let at = this.pos + 1;
    if (at >= this.limit) throw new WireError("LDAP reply truncated");
    let len = this.b[at++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw new WireError("LDAP reply malformed: indefinite length");
      if (n > 4) throw new WireError("LDAP reply malformed: length of more than 4 octets");
      if (at + n > this.limit) throw new WireError("LDAP reply truncated");
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + this.b[at++]!;
    }
    if (len > this.limit - at) throw new WireError("LDAP reply malformed: a length runs past its enclosing value");
    this.start = at;
    this.end = at + len;
    this.pos = this.end;
    return tag;
  }

  /** A non-negative INTEGER or ENUMERATED of at most 4 octets. */
  int(expected: number): number {
    this.tlv(expected);
    const n = this.end - this.start;
    if (n < 1 || n > 5) throw new WireError("LDAP reply malformed: bad integer length");
    if (this.b[this.start]! & 0x80) throw new WireError("LDAP reply malformed: negative integer");
    let v = 0;
    for (let k = this.start; k < this.end; k++) v = v * 256 + this.b[k]!;
    if (v > MAX_ID) throw new WireError("LDAP reply malformed: integer out of range");
    return v;
  }

  octets(expected: number): Uint8Array {
    this.tlv(expected);
    return this.b.subarray(this.start, this.end);
  }

  string(expected: number): string {
    return utf8Lenient.decode(this.octets(expected));
  }

  /** A reader over the content of the next value (which must have the expected tag). */
  enter(expected: number): BerIn {
    this.tlv(expected);
    return new BerIn(this.b, this.start, this.end);
  }
}

/**
 * Length of the LDAPMessage at the start of `b` (header included), or -1 when more bytes are needed.
 * Throws WireError when it is not a SEQUENCE, is malformed or exceeds MAX_MESSAGE_BYTES.
 */
export function frameLength(b: Uint8Array): number {
  if (b.length < 2) return -1;
  if (b[0] !== 0x30) throw new WireError(`LDAP reply malformed: message starts with 0x${b[0]!.toString(16)}, not a SEQUENCE`);
  let len = b[1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new WireError("LDAP reply malformed: indefinite length");
    if (n > 4) throw new WireError("LDAP reply malformed: length of more than 4 octets");
    if (b.length < 2 + n) return -1;
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + b[2 + k]!;
    header += n;
  }
  if (len > MAX_MESSAGE_BYTES) throw new WireError(`LDAP reply of ${len} bytes exceeds the limit of ${MAX_MESSAGE_BYTES}`);
  return b.length >= header + len ? header + len : -1;
}

/** The message ID of a complete LDAPMessage (frameLength > 0). */
export function messageId(frame: Uint8Array): number {
  const r = new BerIn(frame, 0, frame.length).enter(0x30);
  return r.int(0x02);
}

interface LdapResult {
  code: number;
  diagnostic: string;
}

/** LDAPResult components (RFC 4511 §4.1.9) at the start of `r`; referral and SASL credentials are skipped. */
function readResult(r: BerIn): LdapResult {
  const code = r.int(0x0a);
  r.octets(0x04); // matchedDN
  const diagnostic = r.string(0x04);
  return { code, diagnostic };
}

/** The ppolicy response control's value, if the message's controls hold one. */
function readPpolicy(r: BerIn): PpolicyValue | undefined {
  if (r.done || r.peek() !== 0xa0) return undefined;
  const controls = r.enter(0xa0);
  let out: PpolicyValue | undefined;
  while (!controls.done) {
    const c = controls.enter(0x30);
    const oid = c.string(0x04);
    if (!c.done && c.peek() === 0x01) c.tlv(0x01);
    if (oid !== PPOLICY_OID || c.done) continue;
    const value = c.octets(0x04);
    const seq = new BerIn(value, 0, value.length).enter(0x30);
    out = {};
    if (!seq.done && seq.peek() === 0xa0) {
      const warning = seq.enter(0xa0);
      const t = warning.peek();
      if (t === 0x80) out.timeBeforeExpiration = warning.int(0x80);
      else if (t === 0x81) out.graceAuthNsRemaining = warning.int(0x81);
    }
    if (!seq.done && seq.peek() === 0x81) out.error = seq.int(0x81);
  }
  return out;
}

const ATTRIBUTE_DESCRIPTION = /^[A-Za-z0-9][A-Za-z0-9.-]*(?:;[A-Za-z0-9=.-]+)*$/;

/** A SearchResultEntry's content as ldapts's Entry (ldapts's toObject rules: one value → value, several → array, none or absent → []). */
function readEntry(r: BerIn, wanted: readonly string[], buffers: readonly string[]): Entry {
  const entry: Entry = { dn: r.string(0x04) };
  const attrs = r.enter(0x30);
  const seen = new Set<string>();
  while (!attrs.done) {
    const a = attrs.enter(0x30);
    const type = a.string(0x04);
    const vals = a.enter(0x31);
    const raw: Buffer[] = [];
    while (!vals.done) raw.push(Buffer.from(vals.octets(0x04)));
    // RFC 4512 §2.5 attribute descriptions are letters, digits, '-', '.' and ';'-options (AD adds
    // "range=0-1499"); anything else ("__proto__", "constructor") is not one and is left out.
    if (!ATTRIBUTE_DESCRIPTION.test(type) || type === "constructor") continue;
    seen.add(type.toLowerCase());
    let values: string[] | Buffer[] = raw;
    if (!buffers.includes(type) && !/;binary$/i.test(type)) {
      const text: string[] = [];
      for (const v of raw) {
        try {
          text.push(utf8Fatal.decode(v));
        } catch {
          text.length = 0;
          break;
        }
      }
      if (text.length === raw.length) values = text;
    }
    entry[type] = values.length === 1 ? values[0]! : values;
  }
  for (const a of wanted) if (entry[a] === undefined && !seen.has(a.toLowerCase())) entry[a] = [];
  return entry;
}

// ── the channel over one connection ───────────────────────────────────────────────────────────────

type Pending =
  | { kind: "bind"; timer: ReturnType<typeof setTimeout>; resolve: (r: BindReply) => void; reject: (e: Error) => void }
  | { kind: "extended"; timer: ReturnType<typeof setTimeout>; resolve: (r: LdapResult) => void; reject: (e: Error) => void }
  | {
      kind: "search";
      timer: ReturnType<typeof setTimeout>;
      resolve: (r: Entry[]) => void;
      reject: (e: Error) => void;
      entries: Entry[];
      /** The request's size limit (0: none); a server sending more entries is broken or hostile. */
      sizeLimit: number;
      wanted: readonly string[];
      buffers: readonly string[];
    };

type DataHandler = (data: Buffer) => void;

/** What a WireChannel needs of a connection: send bytes (in order), and close it for good. */
export interface WireTransport {
  write(bytes: Uint8Array): void;
  /** Closes the connection at once; the transport then calls the channel's closed(). */
  destroy(): void;
  readonly destroyed: boolean;
}

/**
 * The codec's operations on one connection (see the file comment). The transport feeds it with
 * received() and closed(); WireChannel.attach does that for a socket ldapts opened, once the
 * connection is up (after StartTLS).
 */
export class WireChannel {
  readonly #socket: WireTransport;
  readonly #ldapts: DataHandler | undefined;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = WIRE_ID_BASE;
  #buffer: Buffer | undefined;
  #failed: WireError | undefined;

  /** A channel over `transport`; messages with IDs it did not issue go to `other` (none: they fail the connection). */
  constructor(transport: WireTransport, timeoutMs: number, other?: DataHandler) {
    this.#socket = transport;
    this.#ldapts = other;
    this.#timeoutMs = timeoutMs;
  }

  /** Takes over the data events of the client's (connected) socket. */
  static attach(client: Client, timeoutMs: number): WireChannel {
    const c = client as unknown as { socket?: net.Socket; socketDataHandler?: DataHandler };
    const socket = c.socket;
    const ldapts = c.socketDataHandler;
    if (!socket || typeof ldapts !== "function" || socket.destroyed) throw new WireError("LDAP connection is not open");
    const transport: WireTransport = {
      write: (bytes) => void socket.write(bytes),
      destroy: () => void socket.destroy(),
      get destroyed() {
        return socket.destroyed;
      },
    };
    const ch = new WireChannel(transport, timeoutMs, ldapts);
    socket.removeListener("data", ldapts);
    socket.on("data", (d: Buffer) => ch.received(d));
    socket.once("close", () => ch.closed());
    return ch;
  }

  /** The connection has failed or is being closed: no operation can complete on it. */
  get failed(): boolean {
    return this.#failed !== undefined || this.#socket.destroyed;
  }

  /** Bytes from the server, in order (called by the transport). */
  received(chunk: Buffer): void {
    this.#data(chunk);
  }

  /** The connection closed (called by the transport): every operation in flight fails. */
  closed(reason = "LDAP connection closed"): void {
    this.#fail(new WireError(reason));
  }

  /** Operations of this codec in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * A simple bind (RFC 4511 §4.2) with the ppolicy request control when asked. Resolves with the
   * server's result, success or not. An empty password is refused here (it would be an
   * unauthenticated bind, RFC 4513 §5.1.2). Rejects with WireError on a network failure or timeout.
   */
  bind(dn: string, password: string, { ppolicy = false } = {}): Promise<BindReply> {
    if (password === "") return Promise.reject(new TypeError("refusing an unauthenticated bind (empty password)"));
    return new Promise<BindReply>((resolve, reject) => {
      const id = this.#id();
      this.#send(id, encodeBindRequest(id, dn, password, { ppolicy }), { kind: "bind", timer: this.#timer(id, "bind"), resolve, reject });
    });
  }

  /**
   * An extended operation without a request value (StartTLS). Resolves with the result code and
   * diagnostic of the ExtendedResponse; rejects with WireError on a network failure or timeout.
   */
  extended(oid: string): Promise<{ code: number; diagnostic: string }> {
    return new Promise<LdapResult>((resolve, reject) => {
      const id = this.#id();
      this.#send(id, encodeExtendedRequest(id, oid), { kind: "extended", timer: this.#timer(id, "extended operation"), resolve, reject });
    });
  }

  /** Sends an UnbindRequest (best effort; the caller then closes the connection). */
  unbind(): void {
    if (this.failed) return;
    this.#socket.write(encodeUnbindRequest(this.#id()));
  }

  /**
   * A search (RFC 4511 §4.5). Resolves with the entries (search result references are not followed);
   * a result code other than success rejects with ldapts's ResultCodeError for it (4: sizeLimitExceeded, …).
   * Throws FilterSyntaxError, before sending anything, for a filter this codec does not parse.
   */
  search(baseDN: string, o: WireSearchOptions): Promise<Entry[]> {
    const id = this.#peekId();
    const bytes = encodeSearchRequest(id, baseDN, o);
    return new Promise<Entry[]>((resolve, reject) => {
      this.#id();
      this.#send(id, bytes, {
        kind: "search",
        timer: this.#timer(id, "search"),
        resolve,
        reject,
        entries: [],
        sizeLimit: o.sizeLimit ?? 0,
        wanted: o.attributes,
        buffers: o.explicitBufferAttributes ?? [],
      });
    });
  }

  #peekId(): number {
    return this.#nextId;
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_ID ? WIRE_ID_BASE : id + 1;
    return id;
  }

  #timer(id: number, op: string): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      p.reject(new WireError(`LDAP ${op} timed out after ${this.#timeoutMs} ms`));
      // The server may still answer; the session is not trusted after a lost reply.
      this.#socket.destroy();
    }, this.#timeoutMs);
  }

  #send(id: number, bytes: Buffer, p: Pending): void {
    if (this.#failed || this.#socket.destroyed) {
      clearTimeout(p.timer);
      p.reject(this.#failed ?? new WireError("LDAP connection closed"));
      return;
    }
    this.#pending.set(id, p);
    this.#socket.write(bytes);
  }

  #data(chunk: Buffer): void {
    if (this.#failed) return;
    // A directory answer completes logins in this event-loop turn, like a datagram starts them: the
    // RADIUS replies they produce wait for the end of the turn and leave together (runtime/udp.ts).
    markDelivery();
    const buf = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
    this.#buffer = undefined;
    try {
      let off = 0;
      for (;;) {
        const rest = off === 0 ? buf : buf.subarray(off);
        const n = frameLength(rest);
        if (n < 0) {
          if (rest.length > 0) this.#buffer = Buffer.from(rest);
          break;
        }
        this.#message(rest.subarray(0, n));
        if (this.#failed) return;
        off += n;
        if (off === buf.length) break;
      }
    } catch (e) {
      this.#fail(e instanceof WireError ? e : new WireError(`LDAP reply malformed: ${(e as Error).message}`));
      this.#socket.destroy();
    }
  }

  #message(frame: Buffer): void {
    const msg = new BerIn(frame, 0, frame.length).enter(0x30);
    const id = msg.int(0x02);
    const p = this.#pending.get(id);
    if (!p) {
      if (id >= WIRE_ID_BASE) return; // an answer to an operation already failed; its connection is being closed
      // A notice of disconnection (RFC 4511 §4.4.1, message ID 0) or an answer nobody asked for.
      if (!this.#ldapts) throw new WireError(id === 0 ? "LDAP server sent a notice of disconnection" : `LDAP reply malformed: message ID ${id} was not issued`);
      this.#ldapts(frame);
      return;
    }
    const op = msg.peek();
    if (p.kind === "extended") {
      if (op !== 0x78) throw new WireError(`LDAP reply malformed: operation 0x${op.toString(16)} in answer to an extended operation`);
      const result = readResult(msg.enter(0x78));
      this.#settle(id, p);
      p.resolve(result);
      return;
    }
    if (p.kind === "bind") {
      if (op !== 0x61) throw new WireError(`LDAP reply malformed: operation 0x${op.toString(16)} in answer to a bind`);
      const result = readResult(msg.enter(0x61));
      const ppolicy = readPpolicy(msg);
      this.#settle(id, p);
      p.resolve({ code: result.code, diagnostic: result.diagnostic, ppolicy });
      return;
    }
    if (op === 0x64) {
      if (p.sizeLimit > 0 && p.entries.length >= p.sizeLimit) throw new WireError(`LDAP reply malformed: more entries than the size limit of ${p.sizeLimit}`);
      p.entries.push(readEntry(msg.enter(0x64), p.wanted, p.buffers));
    } else if (op === 0x73) {
      msg.tlv(0x73); // a search result reference: referrals are not followed
    } else if (op === 0x65) {
      const result = readResult(msg.enter(0x65));
      this.#settle(id, p);
      if (result.code === 0) p.resolve(p.entries);
      else p.reject(StatusCodeParser.parse({ status: result.code, errorMessage: result.diagnostic } as unknown as Parameters<typeof StatusCodeParser.parse>[0]));
    } else {
      throw new WireError(`LDAP reply malformed: operation 0x${op.toString(16)} in answer to a search`);
    }
  }

  #settle(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.#pending.delete(id);
  }

  #fail(e: WireError): void {
    if (this.#failed) return;
    this.#failed = e;
    this.#buffer = undefined;
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }
}
