// RADIUS OTP load generator: one Access-Request per user (User-Password = current TOTP code), a fixed
// number in flight on one UDP socket, every reply verified; prints {rps, p50_ms, p99_ms, accepts, rejects, timeouts}.
//
// Usage: bun scripts/loadgen.ts --server 127.0.0.1:1812 --secret S (or $LOADGEN_SECRET) --users users.csv
//          [--concurrency 128] [--timeout-ms 3000] [--max-seconds 60] [--limit N] [--no-step-wait]
// users.csv has a header with at least `username` and `totp_secret` (base32); optional
// `totp_digits`, `totp_period`, `totp_algorithm` (the `user import` format works as is).
// Nothing is retransmitted (unless runLoad is given `retries`): an unanswered request is a timeout.

import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Attr, Code, buildAccessRequest, checkReply, decodeBase32, text, totp, type TOTPParams } from "./bench/radius-wire.ts";

/** One load-generation target user. */
export interface LoadUser {
  username: string;
  key: Uint8Array;
  params: Required<TOTPParams>;
  /**
   * When set, User-Password is this password instead of a TOTP code (password-only workloads such
   * as the LDAP benchmark; `key` is then unused). Never printed.
   */
  password?: string;
}

/** The summary printed as JSON. */
export interface LoadResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  accepts: number;
  rejects: number;
  timeouts: number;
  /** Replies with an invalid Message-Authenticator or an unexpected code (bad Response Authenticators are ignored as forgeries). */
  invalid: number;
  /** Verified replies that carried no Message-Authenticator (FreeRADIUS before 3.2.5 sends none). */
  reply_ma_missing: number;
  /** Verified replies whose Message-Authenticator was not the first attribute. */
  reply_ma_not_first: number;
  sent: number;
  /** Packets sent again after `timeoutMs` without an answer (only with `retries`). */
  retransmissions: number;
  duration_s: number;
}

/** Options for {@link runLoad}. */
export interface LoadOptions {
  host: string;
  port: number;
  secret: string;
  concurrency?: number;
  timeoutMs?: number;
  maxSeconds?: number;
  /** Wait for the next TOTP step boundary before building the packets (default true). */
  waitForStep?: boolean;
  now?: () => number;
  /** Called just before the first request is sent (after the step wait and packet building). */
  onStart?: () => void;
  /**
   * Several servers (ports on `host`), like a NAS load balancer: request i goes to
   * `ports[(i + portOffset) % ports.length]` (default: `[port]` alone, on a connected socket).
   */
  ports?: readonly number[];
  portOffset?: number;
  /** Filled in when given: each request's outcome, the port it went to and the time its code was made for. */
  record?: LoadRecord;
  /**
   * Retransmissions of an unanswered request, like a NAS (RFC 5080 §2.2.1): the same packet (same
   * Identifier and Request Authenticator) from the same socket to the same server after each
   * `timeoutMs`; it counts as a timeout only when the last one goes unanswered too. Default 0.
   */
  retries?: number;
}

/** Per-request outcomes of a {@link runLoad} run, indexed like its users. */
export interface LoadRecord {
  /** 0 never sent, 1 accept, 2 reject, 3 timeout, 4 invalid. */
  outcome?: Uint8Array;
  /** The port each request was sent to. */
  port?: Uint16Array;
  /** The `now` (ms) each request's TOTP code was computed for. */
  codeAt?: number;
}

export const OUTCOME = { unsent: 0, accept: 1, reject: 2, timeout: 3, invalid: 4 } as const;

/** Parses a users CSV (header row; columns by name). Throws TypeError naming the line on bad input. */
export function parseUsersCSV(csv: string): LoadUser[] {
  const lines = csv.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = (lines.shift() ?? "").split(",").map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  const iUser = col("username");
  const iSecret = col("totp_secret");
  if (iUser < 0 || iSecret < 0) throw new TypeError("users file: header needs username and totp_secret columns");
  const iDigits = col("totp_digits");
  const iPeriod = col("totp_period");
  const iAlg = col("totp_algorithm");
  return lines.map((line, n) => {
    const f = line.split(",").map((x) => x.trim().replace(/^"(.*)"$/, "$1"));
    const username = f[iUser] ?? "";
    const secret = f[iSecret] ?? "";
    if (!username || !secret) throw new TypeError(`users file line ${n + 2}: username and totp_secret are required`);
    const alg = (f[iAlg] || "SHA1").toUpperCase();
    if (alg !== "SHA1" && alg !== "SHA256" && alg !== "SHA512") throw new TypeError(`users file line ${n + 2}: bad totp_algorithm`);
    return {
      username,
      key: decodeBase32(secret),
      params: { algorithm: alg, digits: Number(f[iDigits] || 6), period: Number(f[iPeriod] || 30) },
    };
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Sends one Access-Request per user and waits for every reply or its timeout. Bounded by
 * `maxSeconds` overall (plus at most one TOTP period of waiting for the step boundary).
 * Throws only on socket errors.
 */
export async function runLoad(users: readonly LoadUser[], opts: LoadOptions): Promise<LoadResult> {
  const { host, port, secret, concurrency = 128, timeoutMs = 3000, maxSeconds = 60, waitForStep = true, portOffset = 0, retries = 0 } = opts;
  const ports = opts.ports && opts.ports.length > 0 ? opts.ports : [port];
  const spread = ports.length > 1;
  const portOf = (i: number) => ports[(i + portOffset) % ports.length]!;
  const now = opts.now ?? Date.now;
  const n = users.length;
  const window = Math.max(1, Math.min(concurrency, 200)); // < 256 Identifiers, so in-flight IDs never collide

  // Codes are only valid for the current step: start right after a step boundary so the whole run fits in it.
  const period = users[0]?.params.period ?? 30;
  if (waitForStep) {
    const ms = period * 1000 - (now() % (period * 1000)) + 20;
    await Bun.sleep(ms);
  }

  // Build every packet before the timed phase.
  const auths = randomBytes(16 * n);
  const packets: Uint8Array[] = new Array(n);
  const buildFor = (i: number, identifier: number, t: number) => {
    const u = users[i]!;
    return buildAccessRequest({
      identifier,
      secret,
      authenticator: auths.subarray(16 * i, 16 * i + 16),
      attributes: [
        [Attr.UserName, text(u.username)],
        [Attr.UserPassword, text(u.password ?? totp(u.key, { now: t, ...u.params }))],
      ],
    });
  };
  const buildStart = now();
  for (let i = 0; i < n; i++) packets[i] = buildFor(i, i & 0xff, buildStart);
  const outcome = new Uint8Array(n);
  const sentTo = new Uint16Array(n);
  if (opts.record) Object.assign(opts.record, { outcome, port: sentTo, codeAt: buildStart });

  const latency = new Float64Array(n);
  const startedAt = new Float64Array(n);
  const lastSentAt = new Float64Array(n);
  const tries = new Uint8Array(n);
  let retransmissions = 0;
  const inflight = new Int32Array(256).fill(-1); // Identifier -> request index
  let inflightCount = 0;
  let next = 0;
  let done = 0;
  let accepts = 0;
  let rejects = 0;
  let timeouts = 0;
  let invalid = 0;
  let maMissing = 0;
  let maNotFirst = 0;
  let answered = 0;
  let blocked = false;
  let lastAnswerAt = 0;
  let socketErrors = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const complete = (id: number, result: number) => {
    outcome[inflight[id]!] = result;
    inflight[id] = -1;
    inflightCount--;
    done++;
  };

  const handlers: Bun.udp.SocketHandler<"buffer"> = {
    data(_s, buf) {
      const t = performance.now();
      if (buf.length < 20) return;
      const id = buf[1]!;
      const idx = inflight[id]!;
      if (idx < 0) return; // late reply to a request already counted as a timeout
      const r = checkReply(buf, packets[idx]!, secret);
      if (!r || !r.responseAuthenticatorValid) return; // not ours (or forged): keep waiting for the real one
      latency[answered++] = t - startedAt[idx]!;
      lastAnswerAt = t;
      const hasMA = r.attributes.some(([type]) => type === Attr.MessageAuthenticator);
      if (!hasMA) maMissing++;
      else if (!r.messageAuthenticatorFirst) maNotFirst++;
      let result: number = OUTCOME.invalid;
      if (hasMA && !r.messageAuthenticatorValid) invalid++;
      else if (r.code === Code.AccessAccept) (accepts++, (result = OUTCOME.accept));
      else if (r.code === Code.AccessReject) (rejects++, (result = OUTCOME.reject));
      else invalid++;
      complete(id, result);
      pump();
    },
    drain() {
      blocked = false;
      pump();
    },
    error(_s, err) {
      // Once per run: an unconnected socket reports each ICMP error of a server that went away.
      if (socketErrors++ === 0) process.stderr.write(`loadgen: socket error: ${err?.message ?? "unknown"}\n`);
    },
  };
  // One port: a connected socket; several: one unconnected socket, each packet addressed to its server.
  const connected = spread ? undefined : await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, connect: { hostname: host, port: ports[0]! }, socket: handlers });
  const unconnected = spread ? await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: handlers }) : undefined;
  const socket = { send: (b: Uint8Array, to: number) => (connected ? connected.send(b) : unconnected!.send(b, to, host)), close: () => (connected ?? unconnected)!.close() };

  function pump() {
    while (!blocked && inflightCount < window && next < n) {
      const i = next;
      let id = i & 0xff;
      if (inflight[id]! >= 0) {
        // Rare (only after losses): pick a free Identifier and rebuild this one packet.
        id = inflight.indexOf(-1);
        packets[i] = buildFor(i, id, buildStart);
      }
      startedAt[i] = performance.now();
      const to = portOf(i);
      sentTo[i] = to;
      let sent: boolean;
      try {
        sent = socket.send(packets[i]!, to);
      } catch {
        // A connected socket reports an earlier packet's ICMP port unreachable on the next send
        // (ECONNREFUSED), which then is not sent: tried again at the sweeper's next tick.
        return;
      }
      if (!sent) {
        blocked = true;
        return;
      }
      next++;
      inflight[id] = i;
      inflightCount++;
      lastSentAt[i] = startedAt[i]!;
      tries[i] = 1;
    }
    if (done === n) finish();
  }

  opts.onStart?.();
  const t0 = performance.now();
  const deadline = t0 + maxSeconds * 1000;
  const sweeper = setInterval(() => {
    const t = performance.now();
    for (let id = 0; id < 256; id++) {
      const idx = inflight[id]!;
      if (idx < 0 || (t - lastSentAt[idx]! <= timeoutMs && t <= deadline)) continue;
      if (tries[idx]! <= retries && t <= deadline) {
        tries[idx]!++;
        lastSentAt[idx] = t;
        retransmissions++;
        try {
          socket.send(packets[idx]!, sentTo[idx]!); // not sent (buffer full, ICMP error): the next try may be
        } catch {
          // as above
        }
        continue;
      }
      timeouts++;
      complete(id, OUTCOME.timeout);
    }
    if (t > deadline) {
      timeouts += n - next; // never sent
      next = n;
      done = n;
    }
    pump();
  }, 25);

  pump();
  await finished;
  clearInterval(sweeper);
  socket.close();

  const end = answered > 0 ? lastAnswerAt : performance.now();
  const duration = (end - t0) / 1000;
  const sorted = latency.slice(0, answered).sort();
  return {
    rps: duration > 0 ? Math.round(answered / duration) : 0,
    p50_ms: round3(percentile(sorted, 50)),
    p99_ms: round3(percentile(sorted, 99)),
    accepts,
    rejects,
    timeouts,
    invalid,
    reply_ma_missing: maMissing,
    reply_ma_not_first: maNotFirst,
    sent: next,
    retransmissions,
    duration_s: round3(duration),
  };
}

if (import.meta.main) {
  const { values: a } = parseArgs({
    options: {
      server: { type: "string", default: "127.0.0.1:1812" },
      secret: { type: "string" },
      users: { type: "string" },
      concurrency: { type: "string", default: "128" },
      "timeout-ms": { type: "string", default: "3000" },
      "max-seconds": { type: "string", default: "60" },
      limit: { type: "string" },
      "no-step-wait": { type: "boolean", default: false },
    },
  });
  a.secret ??= process.env.LOADGEN_SECRET;
  if (!a.secret || !a.users) {
    process.stderr.write("usage: bun scripts/loadgen.ts --server HOST:PORT --secret S --users FILE.csv [--concurrency 128]\n");
    process.exit(2);
  }
  const m = /^(.+):(\d+)$/.exec(a.server!);
  if (!m) {
    process.stderr.write("loadgen: --server must be HOST:PORT\n");
    process.exit(2);
  }
  let users = parseUsersCSV(readFileSync(a.users, "utf8"));
  if (a.limit) users = users.slice(0, Number(a.limit));
  const result = await runLoad(users, {
    host: m[1]!.replace(/^\[(.*)\]$/, "$1"),
    port: Number(m[2]),
    secret: a.secret,
    concurrency: Number(a.concurrency),
    timeoutMs: Number(a["timeout-ms"]),
    maxSeconds: Number(a["max-seconds"]),
    waitForStep: !a["no-step-wait"],
  });
  process.stdout.write(JSON.stringify(result) + "\n");
}
