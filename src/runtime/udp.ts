// UDP sockets for the RADIUS server: the only place that opens them, sizes their receive buffer,
// and reads the kernel's drop counters.
//
// Bun's native UDP socket is used directly, and the replies of one event-loop turn leave in one
// sendmmsg(2) call (measured: one system call per reply was a tenth of the server's CPU).
// Bun's socket cannot size its receive buffer, so that is done with setsockopt(2) on its file
// descriptor through bun:ffi (libc): SO_RCVBUFFORCE first (root or CAP_NET_ADMIN may exceed
// net.core.rmem_max), then SO_RCVBUF (capped by rmem_max). Without libc the kernel default stays
// and the start-up log says how large the buffer is.

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
  close(): Promise<void>;
}

export interface BindOptions {
  recvBufferBytes: number;
  onMessage(data: Uint8Array, address: string, port: number): void;
  onError?(err: Error): void;
}

/**
 * Binds one UDP socket on an explicit address. Rejects when the address cannot be bound, e.g.
 * EADDRINUSE, or EACCES for port 1812 without CAP_NET_BIND_SERVICE.
 */
export async function bindUDP(address: string, port: number, options: BindOptions): Promise<UDPEndpoint> {
  const v6 = isIPv6(address);
  const socket = await Bun.udpSocket({
    hostname: address,
    port,
    socket: {
      data(_socket, data, fromPort, fromAddress) {
        options.onMessage(data, fromAddress, fromPort);
      },
      error(_socket, err) {
        options.onError?.(err);
      },
    },
  });
  const fd = (socket as unknown as { fd?: number }).fd;
  const sockopt = socketOptions();
  if (fd !== undefined && sockopt) sockopt.setReceiveBuffer(fd, options.recvBufferBytes);

  let queue: (Uint8Array | number | string)[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (socket.closed || queue.length === 0) return;
    const batch = queue;
    queue = [];
    let sent = 0;
    try {
      sent = socket.sendMany(batch as never);
    } catch (err) {
      options.onError?.(err as Error);
    }
    // What the kernel did not take now is tried once more, one by one; UDP may lose it anyway
    // and the NAS's retransmission then gets the cached reply.
    for (let i = sent * 3; i < batch.length; i += 3) socket.send(batch[i] as Uint8Array, batch[i + 1] as number, batch[i + 2] as string);
  };

  const boundPort = socket.port;
  return {
    address: socket.address.address,
    port: boundPort,
    send(data, toPort, toAddress) {
      queue.push(data, toPort, toAddress);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    receiveBufferSize: () => (fd !== undefined && sockopt ? sockopt.receiveBuffer(fd) : 0),
    kernelDrops: () => procNetDrops(v6 ? "/proc/net/udp6" : "/proc/net/udp", boundPort),
    close: async () => {
      flush();
      socket.close();
    },
  };
}

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;

interface SocketOptions {
  setReceiveBuffer(fd: number, bytes: number): void;
  receiveBuffer(fd: number): number;
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
    };
  } catch {
    cached = null;
  }
  return cached;
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
