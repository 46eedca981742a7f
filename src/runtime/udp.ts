// UDP sockets for the RADIUS server: the only place that opens them, sizes their receive buffer,
// and reads the kernel's drop counters.
//
// Bun's native UDP socket is used directly, and the replies of one event-loop turn leave in one
// sendmmsg(2) call (measured: one system call per reply was a tenth of the server's CPU); see
// ReplyBatcher for when that call is made.
// Bun's socket cannot size its receive buffer, so that is done with setsockopt(2) on its file
// descriptor through bun:ffi (libc): SO_RCVBUFFORCE first (root or CAP_NET_ADMIN may exceed
// net.core.rmem_max), then SO_RCVBUF (capped by rmem_max). Without libc the kernel default stays
// and the start-up log says how large the buffer is.
//
// Outside Bun (Deno) the socket is node:dgram's (bindNodeUDP): the receive buffer is sized with
// setRecvBufferSize (SO_RCVBUF, so capped by net.core.rmem_max: there is no SO_RCVBUFFORCE without
// a file descriptor), the kernel's drop counter is read from /proc/net/udp as on Bun, and the
// replies of a turn still leave together from the ReplyBatcher, but as one send(2) each (node:dgram
// has no sendmmsg). Bun can use bindNodeUDP too, which is how its tests cover it.
//
// RADIUS workers (`[radius] workers`) bind with SO_REUSEPORT (Bun's socket flag, checked with
// getsockopt; else node:dgram's `reusePort`) and attach a classic BPF program that picks the
// worker by the RADIUS Identifier (identifierProgram), so that a retransmission reaches the worker
// that holds the original in its retransmission cache.

import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";

export interface UDPEndpoint {
  readonly address: string;
  readonly port: number;
  /** Queues a datagram; the queue is flushed at the end of the current event-loop turn. */
  send(data: Uint8Array, port: number, address: string): void;
  /** The receive buffer the kernel granted (Linux reports twice the request, capped by rmem_max); 0 if unknown. */
  receiveBufferSize(): number;
  /** Datagrams the kernel dropped on this socket because the receive buffer was full (Linux). */
  kernelDrops(): number;
  /** How a SO_REUSEPORT group picks this socket: "identifier" (BPF, see steerGroup), "address" (the kernel's hash), or "none" (exclusive). */
  readonly steering: "identifier" | "address" | "none";
  close(): Promise<void>;
}

export interface BindOptions {
  recvBufferBytes: number;
  /** Must not throw: an exception here would end the process (Bun treats it as uncaught). */
  onMessage(data: Uint8Array, address: string, port: number): void;
  /**
   * A socket error, as a short data-free code (see errorCode). Bun may report an ICMP error (a NAS
   * port that closed before its reply) with no Error object at all, so the raw value is never passed on.
   * Called at most once a second per socket; `suppressed` counts the errors folded into this call.
   */
  onError?(error: string, suppressed: number): void;
  /**
   * A reply that did not leave: `error` is the system error code ("EAFNOSUPPORT", "EMSGSIZE"),
   * the error's name when it has none, or "would_block" when the socket buffer was full. Never
   * thrown: a queued reply fails after its sender has moved on, so nobody could catch it.
   */
  onSendFailed?(address: string, port: number, error: string): void;
  /** Called just before each batch of replies leaves (the RADIUS server writes their audit lines first). */
  beforeSend?(): void;
  /**
   * Binds with SO_REUSEPORT, beside the sockets of the other RADIUS workers on the same address
   * and port (the kernel only lets sockets of the same user join). Without it the bind is exclusive.
   */
  reusePort?: boolean;
  /**
   * With reusePort: the number of sockets in the group. A classic BPF program then picks the socket
   * by the RADIUS Identifier (the second octet of the UDP payload) modulo this number, so that one
   * NAS's requests spread over every worker while each retransmission (same Identifier) reaches the
   * same one. Where the program cannot be attached the kernel's address hash decides.
   */
  steerGroup?: number;
}

/**
 * Binds one UDP socket on an explicit address. Rejects when the address cannot be bound, e.g.
 * EADDRINUSE, or EACCES for port 1812 without CAP_NET_BIND_SERVICE.
 */
export function bindUDP(address: string, port: number, options: BindOptions): Promise<UDPEndpoint> {
  return typeof Bun !== "undefined" ? bindBunUDP(address, port, options) : bindNodeUDP(address, port, options);
}

/** Calls options.onError at most once a second, with the count of errors folded into the call; never throws. */
function errorReporter(options: BindOptions): (err: unknown) => void {
  let lastErrorAt = 0;
  let suppressedErrors = 0;
  return (err) => {
    // runs on the event loop: a throw here would end the process
    try {
      const now = Date.now();
      if (now - lastErrorAt < 1000) {
        suppressedErrors++;
        return;
      }
      lastErrorAt = now;
      const suppressed = suppressedErrors;
      suppressedErrors = 0;
      options.onError?.(errorCode(err), suppressed);
    } catch {
      // the log write failed; the socket keeps serving
    }
  };
}

/** The node:dgram socket (see the top of this file); what runs under Deno. */
export async function bindNodeUDP(address: string, port: number, options: BindOptions): Promise<UDPEndpoint> {
  const v6 = isIPv6(address);
  const socket = createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6, reusePort: options.reusePort === true } as Parameters<typeof createSocket>[0]);
  const reportError = errorReporter(options);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  socket.on("error", reportError);
  socket.on("message", (data, from) => {
    markDelivery();
    options.onMessage(data, from.address, from.port);
  });
  try {
    socket.setRecvBufferSize(options.recvBufferBytes);
  } catch {
    // the kernel default stays; receiveBufferSize() tells how large it is
  }
  let closed = false;
  const replies = new ReplyBatcher((batch) => {
    if (closed) return;
    try {
      options.beforeSend?.();
    } catch {
      // the log write failed; the replies still leave
    }
    for (let i = 0; i < batch.length; i += 3) {
      const port = batch[i + 1] as number;
      const address = batch[i + 2] as string;
      const failed = (err: unknown) => {
        try {
          options.onSendFailed?.(address, port, errorCode(err));
        } catch {
          // the log write failed
        }
      };
      try {
        socket.send(batch[i] as Uint8Array, port, address, (err) => {
          if (err) failed(err);
        });
      } catch (err) {
        failed(err);
      }
    }
  });
  const bound = socket.address();
  return {
    address: bound.address,
    port: bound.port,
    steering: options.reusePort ? "address" : "none",
    send(data, toPort, toAddress) {
      replies.push(data, toPort, toAddress);
    },
    receiveBufferSize: () => {
      try {
        return socket.getRecvBufferSize();
      } catch {
        return 0;
      }
    },
    kernelDrops: () => procNetDrops(v6 ? "/proc/net/udp6" : "/proc/net/udp", bound.port),
    close: async () => {
      replies.flush();
      closed = true;
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** Bun's native socket, with sendmmsg(2) batches and SO_RCVBUFFORCE through libc. */
async function bindBunUDP(address: string, port: number, options: BindOptions): Promise<UDPEndpoint> {
  const v6 = isIPv6(address);
  const reportError = errorReporter(options);
  const socket = await Bun.udpSocket({
    hostname: address,
    port,
    // Bun's own flag bits (LIBUS_LISTEN_REUSE_PORT = 4), which its node:dgram passes for `reusePort`;
    // not in its typings, so the option is checked on the socket below.
    ...(options.reusePort ? { flags: BUN_REUSE_PORT } : {}),
    socket: {
      data(_socket, data, fromPort, fromAddress) {
        markDelivery();
        options.onMessage(data, fromAddress, fromPort);
      },
      error(_socket, err) {
        reportError(err);
      },
    },
  });
  const fd = (socket as unknown as { fd?: number }).fd;
  const sockopt = socketOptions();
  if (options.reusePort && !(fd !== undefined && sockopt?.reusePort(fd))) {
    // This Bun ignored the flag (or it cannot be checked): node:dgram's documented option instead.
    socket.close();
    return bindNodeUDP(address, port, options);
  }
  if (fd !== undefined && sockopt) sockopt.setReceiveBuffer(fd, options.recvBufferBytes);
  const steered = options.reusePort === true && options.steerGroup !== undefined && fd !== undefined && sockopt !== null && sockopt.steerByIdentifier(fd, options.steerGroup);

  // The batch is sent from a microtask or an immediate, where an exception would be uncaught and
  // end the process: nothing in it may throw, and a reply that cannot leave is reported instead.
  const replies = new ReplyBatcher((batch) => {
    if (socket.closed) return;
    try {
      options.beforeSend?.();
    } catch {
      // the log write failed; the replies still leave
    }
    let sent = 0;
    try {
      sent = socket.sendMany(batch as never);
    } catch {
      // one bad destination fails the whole call: each reply is tried alone below, which reports it
      sent = 0;
    }
    // What the kernel did not take now is tried once more, one by one; UDP may lose it anyway
    // and the NAS's retransmission then gets the cached reply.
    for (let i = sent * 3; i < batch.length; i += 3) {
      const port = batch[i + 1] as number;
      const address = batch[i + 2] as string;
      let error = "would_block";
      try {
        if (socket.send(batch[i] as Uint8Array, port, address)) continue;
      } catch (err) {
        error = errorCode(err);
      }
      options.onSendFailed?.(address, port, error);
    }
  });

  const boundPort = socket.port;
  return {
    address: socket.address.address,
    port: boundPort,
    steering: steered ? "identifier" : options.reusePort ? "address" : "none",
    send(data, toPort, toAddress) {
      replies.push(data, toPort, toAddress);
    },
    receiveBufferSize: () => (fd !== undefined && sockopt ? sockopt.receiveBuffer(fd) : 0),
    kernelDrops: () => procNetDrops(v6 ? "/proc/net/udp6" : "/proc/net/udp", boundPort),
    close: async () => {
      replies.flush();
      socket.close();
    },
  };
}

/**
 * Binds `address:port` exclusively (no SO_REUSEPORT) and releases it at once: rejects with
 * EADDRINUSE while any other socket holds the port (another server, with or without
 * SO_REUSEPORT), and resolves with the port bound (the kernel's choice for port 0). A supervisor
 * of RADIUS workers calls it first, so that a second server on the same address fails to start as
 * it would without workers, and every worker binds the same concrete port.
 */
export async function probeUDP(address: string, port: number): Promise<number> {
  const v6 = isIPv6(address);
  const socket = createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6 });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  const bound = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return bound;
}

/** A short, data-free name for a send failure: the system error code, else the error's class name. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  return err instanceof Error ? err.name : "error";
}

/** True while the event loop is delivering this turn's datagrams (the poll phase), until this turn's immediates run. */
let delivering = false;
const endDelivery = (): void => {
  delivering = false;
};

/** Called for every received datagram: replies queued from now until this turn's immediates wait for them. */
export function markDelivery(): void {
  if (delivering) return;
  delivering = true;
  setImmediate(endDelivery);
}

/** A reply batch is sent as soon as it holds this many replies (see ReplyBatcher). */
export const REPLY_BATCH_MAX = 32;

/**
 * The replies of one socket, sent together: one `sendBatch` call per flush, with the flat
 * [data, port, address, …] list that sendMany takes.
 *
 * When the flush happens decides both the batch size and the latency:
 * - While the event loop is still delivering this turn's datagrams, a reply waits for the end of
 *   the turn (setImmediate), so that one system call carries every reply the turn produces.
 * - Once delivery is over (the turn's immediates are running, where the high-water-mark group
 *   commit releases the turn's logins), a reply leaves at the end of the current microtask run
 *   instead: an immediate queued now would only run after the next poll, behind the whole next
 *   batch of requests, and with a fixed number of requests in flight at the NAS that wait is lost
 *   throughput (measured: 6-10 % more OTP logins a second under the benchmark's load).
 *   Replies resolved in the same microtask run share that one flush.
 * - As soon as REPLY_BATCH_MAX replies are waiting, they leave at once, whatever the phase: with
 *   the store's group commit closing at the same size (store/sqlite/tokens.ts), the first replies
 *   of a large burst go out while the rest of it is still being decoded.
 */
export class ReplyBatcher {
  private queue: (Uint8Array | number | string)[] = [];
  private scheduled = false;

  constructor(private readonly sendBatch: (batch: (Uint8Array | number | string)[]) => void) {}

  push(data: Uint8Array, port: number, address: string): void {
    this.queue.push(data, port, address);
    if (this.queue.length >= REPLY_BATCH_MAX * 3) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    if (delivering) setImmediate(this.scheduledFlush);
    else queueMicrotask(this.scheduledFlush);
  }

  private readonly scheduledFlush = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Sends whatever is queued now (also called on close). */
  flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.sendBatch(batch);
  }
}

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_REUSEPORT = 15;
const SO_RCVBUFFORCE = 33;
const SO_ATTACH_REUSEPORT_CBPF = 51;
/** Bun.udpSocket's `flags` bit for SO_REUSEPORT (uSockets' LIBUS_LISTEN_REUSE_PORT). */
const BUN_REUSE_PORT = 4;

interface SocketOptions {
  setReceiveBuffer(fd: number, bytes: number): void;
  receiveBuffer(fd: number): number;
  /** True when SO_REUSEPORT is set on the socket. */
  reusePort(fd: number): boolean;
  /** Attaches the Identifier-modulo-`group` program to the socket's SO_REUSEPORT group; false when refused. */
  steerByIdentifier(fd: number, group: number): boolean;
}

let cached: SocketOptions | null | undefined;

/** setsockopt/getsockopt from libc, or null where libc cannot be loaded (non-Linux, musl). */
function socketOptions(): SocketOptions | null {
  if (cached !== undefined) return cached;
  try {
    const { dlopen, FFIType, ptr } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
      getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    cached = {
      setReceiveBuffer(fd, bytes) {
        const value = new Int32Array([bytes]);
        if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, ptr(value), 4) !== 0) {
          libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, ptr(value), 4);
        }
      },
      receiveBuffer(fd) {
        const value = new Int32Array(1);
        const length = new Uint32Array([4]);
        return libc.symbols.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, ptr(value), ptr(length)) === 0 ? value[0]! : 0;
      },
      reusePort(fd) {
        const value = new Int32Array(1);
        const length = new Uint32Array([4]);
        return libc.symbols.getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, ptr(value), ptr(length)) === 0 && value[0] === 1;
      },
      steerByIdentifier(fd, group) {
        const program = identifierProgram(group);
        // struct sock_fprog (x86-64 and aarch64 layout): u16 len, padding, then the 64-bit pointer to the instructions.
        const fprog = new DataView(new ArrayBuffer(16));
        fprog.setUint16(0, program.byteLength / 8, true);
        fprog.setBigUint64(8, BigInt(ptr(program)), true);
        return libc.symbols.setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, ptr(fprog), 16) === 0;
      },
    };
  } catch {
    cached = null;
  }
  return cached;
}

/** Kernel drops (see procNetDrops) of every socket on these addresses' ports, each port counted once. */
export function kernelDropsOn(listen: readonly { address: string; port: number }[]): number {
  const seen = new Set<string>();
  let drops = 0;
  for (const { address, port } of listen) {
    const file = isIPv6(address) ? "/proc/net/udp6" : "/proc/net/udp";
    if (seen.has(`${file}:${port}`)) continue;
    seen.add(`${file}:${port}`);
    drops += procNetDrops(file, port);
  }
  return drops;
}

/**
 * The classic BPF program of a RADIUS SO_REUSEPORT group: `return payload[1] % group`. For UDP the
 * kernel runs it on the payload (the UDP header pulled off); its result is the index of the socket
 * in the group, and an index past the group's current size (a worker being restarted) falls back
 * to the address hash. Each instruction is struct sock_filter: u16 code, u8 jt, u8 jf, u32 k.
 */
export function identifierProgram(group: number): Uint8Array {
  const instructions: [number, number][] = [
    [0x30, 1], // BPF_LD | BPF_B | BPF_ABS: A = payload[1], the Identifier
    [0x94, Math.max(1, group)], // BPF_ALU | BPF_MOD | BPF_K: A = A % group
    [0x16, 0], // BPF_RET | BPF_A: the socket index
  ];
  const bytes = new Uint8Array(instructions.length * 8);
  const view = new DataView(bytes.buffer);
  instructions.forEach(([code, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint32(i * 8 + 4, k, true);
  });
  return bytes;
}

/** Sums the `drops` column of /proc/net/udp{,6} for sockets bound to `port`; 0 where unavailable. */
function procNetDrops(file: string, port: number): number {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return 0;
  }
  const hexPort = ":" + port.toString(16).toUpperCase().padStart(4, "0");
  let drops = 0;
  for (const line of text.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 13 || !cols[1]!.endsWith(hexPort)) continue;
    drops += Number(cols[cols.length - 1]) || 0;
  }
  return drops;
}
