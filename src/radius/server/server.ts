// The RADIUS server: sockets, client table, authenticity, retransmission cache and silent discard.
// It decides nothing about who gets in; that is the handler's engine call.
//
//   datagram ─► client table ─► decode ─► verifyRequest ─► dedupe ─► Status-Server | Access-Request
//                 │ unknown       │ malformed  │ bad MA        │ in progress
//                 ▼               ▼            ▼               ▼
//               drop            drop         drop            drop        (counted, logged rate-limited)

import { RateLimitedLog, flushLog, log } from "../../audit/log.ts";
import type { Decision, Engine } from "../../auth/engine.ts";
import { bindUDP, type UDPEndpoint } from "../../runtime/udp.ts";
import type { Store } from "../../store/types.ts";
import { Attr, Code, RADIUSError, decodePacket, encodeResponse, verifyRequest, type RADIUSPacket } from "../codec/index.ts";
import { decideAccessRequest, replyFor, type Drop, type Reply } from "../handler/access-request.ts";
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
  | "duplicate_in_progress"
  | "store_unwritable"
  | "overloaded"
  | "internal_error";

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
  /** How often the client table and store health are re-read. */
  reloadIntervalMs?: number;
  /** Called once per Access-Request handled (not duplicates), with its result and handling time in seconds (metrics). */
  observe?: (result: "accept" | "reject" | "challenge" | "drop", seconds: number) => void;
}

export class RADIUSServer {
  readonly stats: RADIUSStats = { received: 0, accepted: 0, rejected: 0, challenged: 0, statusServer: 0, duplicates: 0, dropped: {} };
  private clients = new ClientTable([]);
  private readonly dedupe: DedupeCache;
  private readonly dropLog: RateLimitedLog;
  private endpoints: UDPEndpoint[] = [];
  private generation = -1;
  private storeWritable = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly options: RADIUSServerOptions,
  ) {
    this.dedupe = new DedupeCache(options.dedupeTtlMs);
    this.dropLog = new RateLimitedLog(options.dropLogIntervalMs);
  }

  /** Loads clients, binds every listen address, and starts the reload loop. Rejects if a bind fails. */
  async start(): Promise<UDPEndpoint[]> {
    await this.refresh();
    try {
      for (const { address, port } of this.options.listen) {
        const endpoint = await bindUDP(address, port, {
          recvBufferBytes: this.options.recvBufferBytes,
          onMessage: (data, source, sourcePort) => this.receive(endpoint, data, source, sourcePort),
          onError: (err) => log("error", "radius.socket_error", { address, error: err.message }),
          // no reply ahead of its own audit line
          beforeSend: flushLog,
        });
        this.endpoints.push(endpoint);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.options.reloadIntervalMs ?? 1000);
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
    this.storeWritable = await this.store.writable().catch(() => false);
    const generation = await this.store.generation();
    if (generation === this.generation) return;
    const table = new ClientTable(await this.store.clients.list());
    for (const name of table.invalid) log("error", "radius.client_invalid", { client: name, detail: "address is not a valid CIDR; client ignored" });
    this.clients = table;
    if (this.generation !== -1) log("info", "radius.clients_reloaded", { clients: table.size });
    this.generation = generation;
  }

  private drop(reason: DropReason, source: string, detail?: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    this.dropLog.log("warn", `${source}|${reason}`, "radius.drop", detail ? { reason, source, detail } : { reason, source });
  }

  private receive(endpoint: UDPEndpoint, data: Uint8Array, source: string, sourcePort: number): void {
    this.stats.received++;
    const entry = this.clients.lookup(source);
    if (!entry) return this.drop("unknown_client", source);

    let packet: RADIUSPacket;
    try {
      packet = decodePacket(data);
      if (packet.code !== Code.AccessRequest && packet.code !== Code.StatusServer) return this.drop("unsupported_code", source, `code ${packet.code}`);
      // Authenticity before action (RFC 3579 §3.2, RFC 5997 §3).
      verifyRequest(packet, data, entry.secret, { requireMessageAuthenticator: entry.client.requireMessageAuthenticator });
    } catch (err) {
      if (err instanceof RADIUSError) return this.drop(err.code, source);
      return this.drop("internal_error", source);
    }

    if (packet.code === Code.StatusServer) {
      // RFC 5997: answered only while this node can do its job, i.e. write the store.
      if (!this.storeWritable) return this.drop("store_unwritable", source);
      this.stats.statusServer++;
      endpoint.send(this.encode(packet, { code: Code.AccessAccept, attributes: [] }, entry.secret), sourcePort, source);
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

    const started = performance.now();
    decideAccessRequest(this.engine, entry.client, entry.secret, packet, now).then(
      (reply) => this.answer(endpoint, entry, packet, key, source, sourcePort, started, reply),
      (err) => this.handlerFailed(key, source, started, err),
    );
  }

  /** Sends (and caches) the reply to a request in progress, or drops it as the handler said. */
  private answer(
    endpoint: UDPEndpoint,
    entry: ClientEntry,
    packet: RADIUSPacket,
    key: string,
    source: string,
    sourcePort: number,
    started: number,
    outcome: Decision | Drop,
  ): void {
    const reply = replyFor(outcome);
    if ("drop" in reply) {
      this.observe("drop", started);
      this.dedupe.abandon(key);
      return this.drop(reply.drop, source, reply.drop === "malformed" ? "User-Password" : "password verification queue full");
    }
    const bytes = this.encode(packet, reply, entry.secret);
    this.dedupe.finish(key, bytes, Date.now());
    endpoint.send(bytes, sourcePort, source);
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

  private handlerFailed(key: string, source: string, started: number, err: unknown): void {
    this.observe("drop", started);
    this.dedupe.abandon(key);
    log("error", "radius.handler_error", { source, error: err instanceof Error ? err.name : "error" });
    this.drop("internal_error", source);
  }

  private observe(result: "accept" | "reject" | "challenge" | "drop", started: number): void {
    this.options.observe?.(result, (performance.now() - started) / 1000);
  }

  /** Message-Authenticator first (always), then the reply attributes, then Proxy-State in request order (RFC 2865 §5.33). */
  private encode(request: RADIUSPacket, reply: Reply, secret: Uint8Array): Uint8Array {
    let attributes = reply.attributes;
    for (const a of request.attributes) {
      if (a.type !== Attr.ProxyState) continue;
      if (attributes === reply.attributes) attributes = [...reply.attributes];
      attributes.push({ type: Attr.ProxyState, value: a.value });
    }
    return encodeResponse(
      { code: reply.code, identifier: request.identifier, attributes },
      request.authenticator,
      secret,
    );
  }

  /** Counters plus kernel drops, for the stats log line (and /metrics later). */
  snapshot(): RADIUSStats & { rcvbufDrops: number; dedupeEntries: number } {
    return { ...this.stats, dropped: { ...this.stats.dropped }, rcvbufDrops: this.kernelDrops(), dedupeEntries: this.dedupe.size };
  }
}
