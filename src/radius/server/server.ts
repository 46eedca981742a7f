// The RADIUS server: sockets, client table, authenticity, retransmission cache and silent discard.
// It decides nothing about who gets in; that is the handler's engine call.
//
//   datagram ─► client table ─► decode ─► verifyRequest ─► dedupe ─► Status-Server | Access-Request ─► reply
//                 │ unknown       │ malformed  │ bad MA        │ in progress            │ too large for 4096
//                 ▼               ▼            ▼               ▼                        ▼
//               drop            drop         drop            drop                     drop   (each counted, logged rate-limited)
//
// Nothing on this path throws out of it: an exception anywhere (a bug, a store or engine that
// throws) is dropped as `internal_error`, counted and logged as one JSON line, because Bun ends the
// process on an uncaught exception or rejection.

import { createHash } from "node:crypto";
import { RateLimitedLog, flushLog, log, type Level } from "../../audit/log.ts";
import type { Attempt, Decision, Engine, Guarded } from "../../auth/engine.ts";
import { bindUDP, type UDPEndpoint } from "../../runtime/udp.ts";
import type { RadiusReplyRepo, Store } from "../../store/types.ts";
import { Attr, Code, MAX_PACKET_LENGTH, RADIUSError, decodePacket, encodeResponse, responseLength, verifyRequest, type RADIUSPacket, type RawAttribute } from "../codec/index.ts";
import { attemptFor, decideAccessRequest, decideAttempt, replyFor, type Drop } from "../handler/access-request.ts";
import { ClientTable, type ClientEntry } from "./client-table.ts";
import { DedupeCache } from "./dedupe.ts";

export type DropReason =
  | "unknown_client"
  | "malformed"
  | "unknown_code"
  | "unsupported_code"
  | "bad_authenticator"
  | "missing_message_authenticator"
  | "bad_message_authenticator"
  | "proxy_state_without_message_authenticator"
  | "eap_without_message_authenticator"
  | "duplicate_in_progress"
  | "store_unwritable"
  | "overloaded"
  /** The reply, with the request's Proxy-State echoed (RFC 2865 §5.33), would exceed 4096 octets (RFC 2865 §3). */
  | "reply_too_large"
  /** The socket refused a reply (system error, or its buffer was full); counted per reply. */
  | "send_failed"
  /** An exception on the packet path: a bug, or a store or engine that threw. */
  | "internal_error";

/** Drops decided after the evaluation began: the retransmission cache keeps them, so a retransmission is dropped the same way. */
type SettledDrop = "reply_too_large" | "internal_error";

export interface RADIUSStats {
  received: number;
  accepted: number;
  rejected: number;
  challenged: number;
  statusServer: number;
  duplicates: number;
  dropped: Partial<Record<DropReason, number>>;
}

export interface RADIUSServerOptions {
  listen: { address: string; port: number }[];
  recvBufferBytes: number;
  dedupeTtlMs: number;
  dropLogIntervalMs: number;
  /** Binds with SO_REUSEPORT beside the other RADIUS workers of this host (runtime/udp.ts). */
  reusePort?: boolean;
  /** With reusePort: the number of workers, among which requests are spread by RADIUS Identifier (runtime/udp.ts). */
  steerGroup?: number;
  /** How often the client table (and, without `health`, the store's health) is re-read. */
  reloadIntervalMs?: number;
  /**
   * The store's health as probed elsewhere (store/health.ts), answered from for Status-Server;
   * without it the reload loop probes the store itself.
   */
  health?: { readonly ok: boolean };
  /** Use the store's idempotency records when it has them (default true). */
  idempotencyRecords?: boolean;
  /** Called once per Access-Request handled (not duplicates), with its result and handling time in seconds (metrics). */
  observe?: (result: "accept" | "reject" | "challenge" | "drop", seconds: number) => void;
}

export class RADIUSServer {
  readonly stats: RADIUSStats = { received: 0, accepted: 0, rejected: 0, challenged: 0, statusServer: 0, duplicates: 0, dropped: {} };
  private clients = new ClientTable([]);
  private readonly dedupe: DedupeCache<SettledDrop>;
  private readonly dropLog: RateLimitedLog;
  private endpoints: UDPEndpoint[] = [];
  private generation = -1;
  /** The client list the table was built from (secrets included: it never leaves this process). */
  private clientsFingerprint = "";
  private storeWritable = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Idempotency records shared with the other nodes (PostgreSQL), or undefined. */
  private readonly replies: RadiusReplyRepo | undefined;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly options: RADIUSServerOptions,
  ) {
    this.dedupe = new DedupeCache<SettledDrop>(options.dedupeTtlMs);
    this.dropLog = new RateLimitedLog(options.dropLogIntervalMs);
    this.replies = options.idempotencyRecords === false ? undefined : store.radiusReplies;
  }

  /** Loads clients, binds every listen address, and starts the reload loop. Rejects if a bind fails. */
  async start(): Promise<UDPEndpoint[]> {
    await this.refresh();
    try {
      for (const { address, port } of this.options.listen) {
        const endpoint = await bindUDP(address, port, {
          recvBufferBytes: this.options.recvBufferBytes,
          onMessage: (data, source, sourcePort) => this.receive(endpoint, data, source, sourcePort),
          onError: (error, suppressed) => log("error", "radius.socket_error", { address, error, suppressed }),
          onSendFailed: (to, _port, error) => this.drop("send_failed", to, { error }),
          // no reply ahead of its own audit line
          beforeSend: flushLog,
          reusePort: this.options.reusePort,
          steerGroup: this.options.steerGroup,
        });
        this.endpoints.push(endpoint);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.timer = setInterval(
      () =>
        void this.refresh().catch((err: unknown) => {
          // The old table stays in force; the line repeats at most once per drop-log interval.
          this.dropLog.log("error", "refresh", "radius.refresh_failed", { error: errorName(err) });
        }),
      this.options.reloadIntervalMs ?? 1000,
    );
    return this.endpoints;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.endpoints.map((e) => e.close()));
    this.endpoints = [];
  }

  /** Datagrams the kernel dropped because a receive buffer was full, over all sockets. */
  kernelDrops(): number {
    return this.endpoints.reduce((sum, e) => sum + e.kernelDrops(), 0);
  }

  /**
   * Re-reads the client table when the store changed (an admin CLI command in another process),
   * and the store's health for Status-Server.
   */
  async refresh(): Promise<void> {
    if (!this.options.health) this.storeWritable = await this.store.writable().catch(() => false);
    const generation = await this.store.generation();
    if (generation === this.generation) return;
    const clients = await this.store.clients.list();
    // Any commit by another process moves the generation (another RADIUS worker's heartbeat too):
    // the table is rebuilt, and its line logged, only when the clients themselves changed.
    const fingerprint = JSON.stringify(clients);
    if (fingerprint === this.clientsFingerprint) {
      this.generation = generation;
      return;
    }
    this.clientsFingerprint = fingerprint;
    const table = new ClientTable(clients);
    for (const name of table.invalid) log("error", "radius.client_invalid", { client: name, detail: "address is not a valid CIDR; client ignored" });
    // Only stored before `client add` refused them: remove one of the two.
    for (const d of table.duplicates) log("warn", "radius.client_duplicate_network", { client: d.client, network: d.network, matched: d.winner });
    this.clients = table;
    if (this.generation !== -1) log("info", "radius.clients_reloaded", { clients: table.size });
    this.generation = generation;
  }

  /**
   * Counts a drop and logs it, at most one line per source and reason per drop-log interval.
   * `fields` never hold packet data: a detail written by this file, a stage, an error's name.
   */
  private drop(reason: DropReason, source: string, fields?: { detail?: string; stage?: string; error?: string }): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    const level: Level = reason === "internal_error" ? "error" : "warn";
    this.dropLog.log(level, `${source}|${reason}`, "radius.drop", fields ? { reason, source, ...fields } : { reason, source });
  }

  /** The UDP callback: every exception below becomes an `internal_error` drop (one JSON line), never an uncaught error. */
  private receive(endpoint: UDPEndpoint, data: Uint8Array, source: string, sourcePort: number): void {
    try {
      this.handle(endpoint, data, source, sourcePort);
    } catch (err) {
      this.drop("internal_error", source, { stage: "receive", error: errorName(err) });
    }
  }

  private handle(endpoint: UDPEndpoint, data: Uint8Array, source: string, sourcePort: number): void {
    this.stats.received++;
    const entry = this.clients.lookup(source);
    if (!entry) return this.drop("unknown_client", source);

    let packet: RADIUSPacket;
    try {
      packet = decodePacket(data);
      if (packet.code !== Code.AccessRequest && packet.code !== Code.StatusServer) return this.drop("unsupported_code", source, { detail: `code ${packet.code}` });
      // Authenticity before action (RFC 3579 §3.2, RFC 5997 §3).
      verifyRequest(packet, data, entry.secret, { requireMessageAuthenticator: entry.client.requireMessageAuthenticator });
    } catch (err) {
      if (err instanceof RADIUSError) return this.drop(err.code, source);
      return this.drop("internal_error", source, { stage: "decode", error: errorName(err) });
    }

    if (packet.code === Code.StatusServer) {
      // RFC 5997: answered only while this node can do its job, i.e. write the store.
      if (!(this.options.health ? this.options.health.ok : this.storeWritable)) return this.drop("store_unwritable", source);
      const attributes = withProxyState(packet, NO_ATTRIBUTES);
      // cannot happen (the request carried the same Proxy-State and a Message-Authenticator too), but is not assumed
      if (responseLength(attributes) > MAX_PACKET_LENGTH) return this.drop("reply_too_large", source, { detail: "Access-Accept to Status-Server" });
      this.stats.statusServer++;
      endpoint.send(encodeResponse({ code: Code.AccessAccept, identifier: packet.identifier, attributes }, packet.authenticator, entry.secret), sourcePort, source);
      return;
    }

    const now = Date.now();
    const key = DedupeCache.key(source, sourcePort, packet.identifier, packet.authenticator);
    const seen = this.dedupe.begin(key, now);
    if (seen.kind === "answered") {
      this.stats.duplicates++;
      endpoint.send(seen.reply, sourcePort, source);
      return;
    }
    if (seen.kind === "in_progress") return this.drop("duplicate_in_progress", source);
    if (seen.kind === "dropped") return this.drop(seen.reason, source, { detail: "retransmission of a request left unanswered" });

    const started = performance.now();
    if (!this.replies) return this.decide(endpoint, entry, packet, key, undefined, source, sourcePort, started, now);
    // Not in this node's cache: another node may have answered the very same packet (a NAS that
    // failed over). Its recorded reply is sent as it is; otherwise the request is evaluated here.
    const replyKey = idempotencyKey(entry.client.name, source, data);
    let attempt: Attempt | Drop;
    let guarded: Promise<Guarded | undefined> | undefined;
    try {
      attempt = attemptFor(entry.client, entry.secret, packet, now);
      // A code-only login the store's memory can accept: one statement looks the record up,
      // consumes the code and records the accept (Engine.guarded).
      if (!("drop" in attempt)) {
        guarded = this.engine.guarded(attempt, {
          key: replyKey,
          expiresAt: now + this.options.dedupeTtlMs,
          accept: () => {
            const attributes = withProxyState(packet, NO_ATTRIBUTES);
            if (responseLength(attributes) > MAX_PACKET_LENGTH) return undefined;
            return encodeResponse({ code: Code.AccessAccept, identifier: packet.identifier, attributes }, packet.authenticator, entry.secret);
          },
        });
      }
    } catch (err) {
      return this.failed(key, source, started, "handler", err);
    }
    const evaluated = attempt;
    if (guarded) {
      guarded.then(
        (outcome) => {
          if (outcome === undefined) return this.decide(endpoint, entry, packet, key, replyKey, source, sourcePort, started, now, evaluated);
          if (outcome.kind === "recorded") return this.repeat(endpoint, key, source, sourcePort, started, outcome.reply);
          if (outcome.recorded) return this.sendRecorded(endpoint, key, source, sourcePort, started, outcome.recorded);
          this.answer(endpoint, entry, packet, key, replyKey, source, sourcePort, started, outcome.decision);
        },
        (err: unknown) => this.failed(key, source, started, "handler", err),
      );
      return;
    }
    this.replies.get(replyKey, now).then(
      (recorded) => {
        if (!recorded) return this.decide(endpoint, entry, packet, key, replyKey, source, sourcePort, started, now, evaluated);
        this.repeat(endpoint, key, source, sourcePort, started, recorded);
      },
      (err: unknown) => {
        // The record cannot be read (the store is failing): evaluate; every single-use rule still holds.
        this.dropLog.log("error", "replies", "radius.reply_record_failed", { stage: "read", error: errorName(err) });
        this.decide(endpoint, entry, packet, key, replyKey, source, sourcePort, started, now, evaluated);
      },
    );
  }

  /** Sends the reply another node recorded for this very packet, as it is. Never throws. */
  private repeat(endpoint: UDPEndpoint, key: string, source: string, sourcePort: number, started: number, recorded: Uint8Array): void {
    try {
      this.stats.duplicates++;
      this.dedupe.finish(key, recorded, Date.now());
      endpoint.send(recorded, sourcePort, source);
    } catch (err) {
      this.failed(key, source, started, "reply", err);
    }
  }

  /** Sends an Access-Accept whose idempotency record the deciding statement wrote (Engine.guarded). Never throws. */
  private sendRecorded(endpoint: UDPEndpoint, key: string, source: string, sourcePort: number, started: number, bytes: Uint8Array): void {
    try {
      this.dedupe.finish(key, bytes, Date.now());
      endpoint.send(bytes, sourcePort, source);
      this.stats.accepted++;
      this.observe("accept", started);
    } catch (err) {
      this.failed(key, source, started, "reply", err);
    }
  }

  /** Runs the handler for a request in progress and answers (or drops) it. Never throws. */
  private decide(
    endpoint: UDPEndpoint,
    entry: ClientEntry,
    packet: RADIUSPacket,
    key: string,
    replyKey: string | undefined,
    source: string,
    sourcePort: number,
    started: number,
    now: number,
    attempt?: Attempt | Drop,
  ): void {
    let decided: Promise<Decision | Drop>;
    try {
      decided = attempt ? decideAttempt(this.engine, attempt) : decideAccessRequest(this.engine, entry.client, entry.secret, packet, now);
    } catch (err) {
      return this.failed(key, source, started, "handler", err);
    }
    decided.then(
      (reply) => this.answer(endpoint, entry, packet, key, replyKey, source, sourcePort, started, reply),
      (err: unknown) => this.failed(key, source, started, "handler", err),
    );
  }

  /**
   * Sends (and caches) the reply to a request in progress, or drops it as the handler said. Never
   * throws: it runs in a promise callback, where an exception would be an unhandled rejection.
   */
  private answer(
    endpoint: UDPEndpoint,
    entry: ClientEntry,
    packet: RADIUSPacket,
    key: string,
    replyKey: string | undefined,
    source: string,
    sourcePort: number,
    started: number,
    outcome: Decision | Drop,
  ): void {
    try {
      this.reply(endpoint, entry, packet, key, replyKey, source, sourcePort, started, outcome);
    } catch (err) {
      this.failed(key, source, started, "reply", err);
    }
  }

  private reply(
    endpoint: UDPEndpoint,
    entry: ClientEntry,
    packet: RADIUSPacket,
    key: string,
    replyKey: string | undefined,
    source: string,
    sourcePort: number,
    started: number,
    outcome: Decision | Drop,
  ): void {
    const reply = replyFor(outcome);
    if ("drop" in reply) {
      this.observe("drop", started);
      this.dedupe.abandon(key);
      return this.drop(reply.drop, source, { detail: reply.drop === "malformed" ? "User-Password" : "password verification queue full" });
    }
    // Message-Authenticator first (always), then the reply attributes, then Proxy-State in request order (RFC 2865 §5.33).
    const attributes = withProxyState(packet, reply.attributes);
    const length = responseLength(attributes);
    if (length > MAX_PACKET_LENGTH) {
      // The decision stands (a code may be consumed, a failure counted) but cannot be sent: RFC 2865 §5.33
      // requires every Proxy-State back and §3 caps the packet at 4096. No reply, so the NAS fails
      // over or gives up; its retransmission is dropped the same way, never evaluated again.
      this.observe("drop", started);
      this.dedupe.drop(key, "reply_too_large", Date.now());
      return this.drop("reply_too_large", source, { detail: `${CODE_NAMES[reply.code] ?? reply.code} of ${length} octets` });
    }
    const bytes = encodeResponse({ code: reply.code, identifier: packet.identifier, attributes }, packet.authenticator, entry.secret);
    this.dedupe.finish(key, bytes, Date.now());
    if (replyKey && this.replies) {
      // Recorded before it is sent: whenever a NAS has seen an answer, every node can repeat it.
      // A failed write still sends the reply (this node decided it); only the failover repeat is lost.
      const send = () => {
        try {
          endpoint.send(bytes, sourcePort, source);
        } catch (err) {
          this.drop("internal_error", source, { stage: "reply", error: errorName(err) });
        }
      };
      this.replies.put(replyKey, bytes, Date.now() + this.options.dedupeTtlMs).then(send, (err: unknown) => {
        this.dropLog.log("error", "replies", "radius.reply_record_failed", { stage: "write", error: errorName(err) });
        send();
      });
    } else endpoint.send(bytes, sourcePort, source);
    if (reply.code === Code.AccessAccept) {
      this.stats.accepted++;
      this.observe("accept", started);
    } else if (reply.code === Code.AccessChallenge) {
      this.stats.challenged++;
      this.observe("challenge", started);
    } else {
      this.stats.rejected++;
      this.observe("reject", started);
    }
  }

  /**
   * An exception after the evaluation began (the handler or engine threw, or the reply could not be
   * built): no reply, one `internal_error` line. The retransmission cache keeps the drop, because the
   * evaluation may have had effects (a consumed code, a counted failure): it is never run twice.
   */
  private failed(key: string, source: string, started: number, stage: "handler" | "reply", err: unknown): void {
    this.observe("drop", started);
    this.dedupe.drop(key, "internal_error", Date.now());
    this.drop("internal_error", source, { stage, error: errorName(err) });
  }

  private observe(result: "accept" | "reject" | "challenge" | "drop", started: number): void {
    this.options.observe?.(result, (performance.now() - started) / 1000);
  }

  /** Counters plus kernel drops, for the stats log line (and /metrics later). */
  snapshot(): RADIUSStats & { rcvbufDrops: number; dedupeEntries: number } {
    return { ...this.stats, dropped: { ...this.stats.dropped }, rcvbufDrops: this.kernelDrops(), dedupeEntries: this.dedupe.size };
  }
}

const NO_ATTRIBUTES: readonly RawAttribute[] = Object.freeze([]);

const CODE_NAMES: Record<number, string> = { [Code.AccessAccept]: "Access-Accept", [Code.AccessReject]: "Access-Reject", [Code.AccessChallenge]: "Access-Challenge" };

/** The reply attributes followed by the request's Proxy-State attributes in order (RFC 2865 §5.33); `attributes` itself when there are none. */
function withProxyState(request: RADIUSPacket, attributes: readonly RawAttribute[]): RawAttribute[] {
  let out = attributes as RawAttribute[];
  for (const a of request.attributes) {
    if (a.type !== Attr.ProxyState) continue;
    if (out === attributes) out = [...attributes];
    out.push({ type: Attr.ProxyState, value: a.value });
  }
  return out;
}

/**
 * The idempotency record's key: SHA-256 over the client's name, the NAS's address and the whole
 * request (Identifier, Request Authenticator and attributes). Not the source port, which a NAS
 * failing over to another server may change; a retransmission repeats the packet octet for octet.
 */
function idempotencyKey(client: string, source: string, request: Uint8Array): string {
  return createHash("sha256").update(client).update("\0").update(source).update("\0").update(request).digest("base64url");
}

/** An error's class name for a log line: never its message, which might quote packet data. */
function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
