// Shared pieces of the RADIUS benchmarks: free ports, the bounded Status-Server wait, the Portcullis CLI, process CPU, medians.

import { readdirSync, readFileSync } from "node:fs";
import { Attr, Code, buildAccessRequest, checkReply, type RawAttribute } from "./radius-wire.ts";
import type { LoadResult } from "../loadgen.ts";

/** A UDP port that was free a moment ago (FreeRADIUS cannot bind port 0 and report it). */
export async function freePort(): Promise<number> {
  const s = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
  const p = s.port;
  s.close();
  return p;
}

/**
 * Sends Status-Server every `everyMs` until an Access-Accept verifies; resolves with the time it arrived.
 * Throws when none arrives within `timeoutMs`.
 */
export async function waitStatusServer(port: number, secret: string, { timeoutMs = 15_000, everyMs = 5 } = {}): Promise<number> {
  let id = 0;
  const sent = new Map<number, Uint8Array>();
  let resolveFn!: (t: number) => void;
  const answered = new Promise<number>((r) => (resolveFn = r));
  const sock = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, buf) {
        const req = sent.get(buf[1] ?? -1);
        if (!req) return;
        const r = checkReply(buf, req, secret);
        if (r?.responseAuthenticatorValid && r.code === Code.AccessAccept) resolveFn(performance.now());
      },
      error() {
        // ICMP port unreachable (ECONNREFUSED) until the server has bound its socket: keep polling.
      },
    },
  });
  const attrs: RawAttribute[] = [[Attr.NASIdentifier, new TextEncoder().encode("bench")]];
  const timer = setInterval(() => {
    id = (id + 1) & 0xff;
    const pkt = buildAccessRequest({ code: Code.StatusServer, identifier: id, secret, attributes: attrs });
    sent.set(id, pkt);
    sock.send(pkt, port, "127.0.0.1");
  }, everyMs);
  try {
    return await Promise.race([
      answered,
      Bun.sleep(timeoutMs).then(() => {
        throw new Error(`no Status-Server answer on port ${port} within ${timeoutMs} ms`);
      }),
    ]);
  } finally {
    clearInterval(timer);
    sock.close();
  }
}

/**
 * Runs a Portcullis CLI command to completion (bounded at 10 minutes). `pre` goes before `--data-dir`
 * (e.g. `--config FILE`). Throws with the last line of its stderr on a non-zero exit.
 */
export async function portcullisCLI(
  bin: string,
  dataDir: string,
  args: string[],
  env: Record<string, string>,
  { stdin, pre = [] }: { stdin?: string; pre?: string[] } = {},
): Promise<string> {
  const p = Bun.spawn([bin, ...pre, "--data-dir", dataDir, ...args], {
    env: { ...process.env, ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`portcullis ${args[0]} ${args[1] ?? ""} exited ${code}: ${err.trim().split("\n").pop()}`);
  return out;
}

/** Resident set size of a process in kB (NaN when /proc does not say). */
export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

/** User + system CPU time of a process (all its threads) in milliseconds, from /proc/PID/stat; NaN when gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** The process and its descendants (a supervisor's RADIUS workers), from /proc/PID/task/TID/children. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 1000; i++) {
    const p = out[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        // the task ended
      }
    }
  }
  return out;
}

/** CPU time (ms) of a process and its live descendants together; NaN when the process is gone. */
export function treeCpuMs(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + (cpuMs(p) || 0), 0) || cpuMs(pid);
}

/** Resident set size (kB) of a process and its descendants together. */
export function treeRss(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + (rss(p) || 0);
    } catch {
      return sum;
    }
  }, 0);
}

/** The median (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Medians of a server's rounds, and the per-round counts. */
export function summarize(xs: readonly LoadResult[]) {
  return {
    rps: median(xs.map((x) => x.rps)),
    p50_ms: median(xs.map((x) => x.p50_ms)),
    p99_ms: median(xs.map((x) => x.p99_ms)),
    rps_rounds: xs.map((x) => x.rps),
    accepts: xs.map((x) => x.accepts),
    rejects: xs.map((x) => x.rejects),
    timeouts: xs.map((x) => x.timeouts),
    retransmissions: xs.map((x) => x.retransmissions),
    invalid: xs.map((x) => x.invalid),
    reply_ma_missing: xs.map((x) => x.reply_ma_missing),
  };
}
