// HTTP floods an outside attacker can run without any credential, bounded in connections and time,
// for loopback targets only. Used by scripts/attack-http.ts (figures for docs/security.md) and by
// test/integration/http-limits.test.ts (the same floods with assertions).
//
// - stalled bodies: POST with a large Content-Length, most of the body, then nothing;
// - held connections: a TLS handshake (or none) and half a request head, then nothing;
// - trickled body: a declared body sent one byte a second;
// while the admin listener is probed for latency and the server's RSS is sampled.

import { readFileSync } from "node:fs";
import { connect as connectTCP, type Socket } from "node:net";
import { connect as connectTLS } from "node:tls";

export interface Target {
  host: "127.0.0.1" | "::1";
  port: number;
  tls: boolean;
}

/** What happened to a flood's connections. */
export interface FloodOutcome {
  /** Connections attempted. */
  attempted: number;
  /** Connections that got through a handshake (TCP, and TLS when used). */
  established: number;
  /** Connections the server closed before the flood let go of them after `holdMs` (refused, answered, or timed out). */
  closedByServer: number;
  /** Status lines of the answers received, counted ("HTTP/1.1 404 Not Found" → "404"). */
  statuses: Record<string, number>;
  /** Median and longest time from connect to the server's close, in ms (closed connections only). */
  closeMsP50: number | null;
  closeMsMax: number | null;
}

function assertLoopback(target: Target): void {
  if (target.host !== "127.0.0.1" && target.host !== "::1") throw new TypeError("floods run against loopback targets only");
}

function open(target: Target): Socket {
  return target.tls
    ? connectTLS({ host: target.host, port: target.port, rejectUnauthorized: false, servername: undefined })
    : connectTCP({ host: target.host, port: target.port });
}

/**
 * Opens `connections` connections (at most `parallel` connecting at once), runs `script` on each once
 * it is established, and keeps them until the server closes them or `holdMs` passes; then closes
 * whatever is left. Never runs longer than holdMs plus the connecting time, bounded by `maxMs`.
 */
async function flood(
  target: Target,
  { connections, holdMs, maxMs = holdMs + 30_000, parallel = 200 }: { connections: number; holdMs: number; maxMs?: number; parallel?: number },
  script: (socket: Socket) => void,
): Promise<FloodOutcome> {
  assertLoopback(target);
  if (!(connections >= 1 && connections <= 20_000)) throw new RangeError("connections must be 1-20000");
  const outcome: FloodOutcome = { attempted: 0, established: 0, closedByServer: 0, statuses: {}, closeMsP50: null, closeMsMax: null };
  const closeTimes: number[] = [];
  const sockets = new Set<Socket>();
  const deadline = Date.now() + maxMs;
  let ending = false;
  const done: Promise<void>[] = [];
  let inFlight = 0;
  const slots: Array<() => void> = [];
  const slot = () => (inFlight < parallel ? (inFlight++, Promise.resolve()) : new Promise<void>((r) => slots.push(() => (inFlight++, r()))));
  const free = () => {
    inFlight--;
    slots.shift()?.();
  };

  for (let i = 0; i < connections && Date.now() < deadline; i++) {
    await slot();
    outcome.attempted++;
    const started = Date.now();
    const socket = open(target);
    sockets.add(socket);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        free();
      }
    };
    done.push(
      new Promise<void>((resolve) => {
        let seen = "";
        let counted = false;
        socket.once(target.tls ? "secureConnect" : "connect", () => {
          outcome.established++;
          release();
          try {
            script(socket);
          } catch {
            // the server closed it first
          }
        });
        socket.on("data", (d: Buffer) => {
          if (counted || seen.length >= 64) return;
          seen += d.toString("latin1");
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(seen)?.[1];
          if (status) {
            outcome.statuses[status] = (outcome.statuses[status] ?? 0) + 1;
            counted = true;
          }
        });
        socket.on("error", () => {});
        socket.once("close", () => {
          release();
          sockets.delete(socket);
          if (!ending) {
            outcome.closedByServer++;
            closeTimes.push(Date.now() - started);
          }
          resolve();
        });
      }),
    );
  }
  const endAll = () => {
    ending = true;
    for (const s of sockets) s.destroy();
  };
  const timer = setTimeout(endAll, holdMs);
  const hardStop = setTimeout(endAll, Math.max(0, deadline - Date.now()));
  await Promise.all(done);
  clearTimeout(timer);
  clearTimeout(hardStop);
  closeTimes.sort((a, b) => a - b);
  if (closeTimes.length > 0) {
    outcome.closeMsP50 = closeTimes[Math.floor(closeTimes.length / 2)]!;
    outcome.closeMsMax = closeTimes[closeTimes.length - 1]!;
  }
  return outcome;
}

/**
 * POST `path` declaring `declared` body bytes, send `sent` of them, then nothing: the reproduction
 * of the unauthenticated memory exhaustion (1,000 × 1 MB declared, 999,000 sent).
 */
export function stalledBodies(
  target: Target,
  { connections, path = "/ml/x", declared = 1_000_000, sent = 999_000, holdMs }: { connections: number; path?: string; declared?: number; sent?: number; holdMs: number },
): Promise<FloodOutcome> {
  const body = Buffer.alloc(Math.min(sent, declared), 0x61);
  return flood(target, { connections, holdMs }, (s) => {
    s.write(`POST ${path} HTTP/1.1\r\nHost: target\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${declared}\r\n\r\n`);
    s.write(body);
  });
}

/** Half a request head, then nothing (slow headers); with TLS the handshake is completed first. */
export function heldConnections(target: Target, { connections, holdMs }: { connections: number; holdMs: number }): Promise<FloodOutcome> {
  return flood(target, { connections, holdMs }, (s) => {
    s.write("GET /healthz HTTP/1.1\r\nHost: tar");
  });
}

/** A declared body of `declared` bytes sent one byte every `everyMs`. */
export function trickledBodies(
  target: Target,
  { connections, path = "/ml/x", declared = 1000, everyMs = 1000, holdMs }: { connections: number; path?: string; declared?: number; everyMs?: number; holdMs: number },
): Promise<FloodOutcome> {
  return flood(target, { connections, holdMs }, (s) => {
    s.write(`POST ${path} HTTP/1.1\r\nHost: target\r\nContent-Length: ${declared}\r\n\r\n`);
    const timer = setInterval(() => {
      if (s.destroyed) clearInterval(timer);
      else s.write("a");
    }, everyMs);
    s.once("close", () => clearInterval(timer));
  });
}

/** Latencies of GET `url` repeated every `everyMs` while `during` runs; a request failing or taking over `timeoutMs` counts as a failure. */
export async function probeWhile<T>(
  url: string,
  during: Promise<T>,
  { everyMs = 100, timeoutMs = 2000, init = {} }: { everyMs?: number; timeoutMs?: number; init?: RequestInit } = {},
): Promise<{ result: T; samples: number; failures: number; p50Ms: number | null; maxMs: number | null }> {
  let running = true;
  const latencies: number[] = [];
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
        await r.arrayBuffer();
        if (r.ok) latencies.push(performance.now() - t0);
        else failures++;
      } catch {
        failures++;
      }
      await Bun.sleep(everyMs);
    }
  })();
  const result = await during.finally(() => {
    running = false;
  });
  await loop;
  latencies.sort((a, b) => a - b);
  return {
    result,
    samples: latencies.length + failures,
    failures,
    p50Ms: latencies.length ? Math.round(latencies[Math.floor(latencies.length / 2)]! * 10) / 10 : null,
    maxMs: latencies.length ? Math.round(latencies[latencies.length - 1]! * 10) / 10 : null,
  };
}

/** A process's resident set (VmRSS) and its peak (VmHWM), in MiB. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssMiB: Math.round(kb("VmRSS") / 1024), peakMiB: Math.round(kb("VmHWM") / 1024) };
}

/** Samples memoryOf(pid) every `everyMs` while `during` runs; the highest RSS seen. */
export async function peakRSSWhile<T>(pid: number, during: Promise<T>, everyMs = 100): Promise<{ result: T; peakRssMiB: number }> {
  let peak = memoryOf(pid).rssMiB;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, memoryOf(pid).rssMiB);
    } catch {
      // the process ended
    }
  }, everyMs);
  try {
    const result = await during;
    peak = Math.max(peak, memoryOf(pid).rssMiB);
    return { result, peakRssMiB: peak };
  } finally {
    clearInterval(timer);
  }
}
