// UDP sockets for the RADIUS server: the only place that touches node:dgram, plus kernel drop counters.

import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";

export interface UDPEndpoint {
  readonly address: string;
  readonly port: number;
  send(data: Uint8Array, port: number, address: string): void;
  /** The receive buffer the kernel actually granted (Linux doubles the request, capped by rmem_max). */
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
 * Binds one UDP socket on an explicit address. Throws (rejects) when the address cannot be bound,
 * e.g. EADDRINUSE or EACCES for port 1812 without CAP_NET_BIND_SERVICE.
 */
export function bindUDP(address: string, port: number, options: BindOptions): Promise<UDPEndpoint> {
  const v6 = isIPv6(address);
  const socket = dgram.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6, recvBufferSize: options.recvBufferBytes });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.on("message", (msg, rinfo) => options.onMessage(msg, rinfo.address, rinfo.port));
    socket.bind(port, address, () => {
      socket.off("error", reject);
      socket.on("error", (err) => options.onError?.(err));
      try {
        socket.setRecvBufferSize(options.recvBufferBytes);
      } catch {
        // the size passed at creation still applies; receiveBufferSize() reports what we got
      }
      const bound = socket.address();
      resolve({
        address: bound.address,
        port: bound.port,
        send: (data, toPort, toAddress) => socket.send(data, toPort, toAddress),
        receiveBufferSize: () => {
          try {
            return socket.getRecvBufferSize();
          } catch {
            return 0;
          }
        },
        kernelDrops: () => procNetDrops(v6 ? "/proc/net/udp6" : "/proc/net/udp", bound.port),
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
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
