// The RADIUS client table: source address → client (longest prefix wins), with a per-source cache.

import type { RadiusClient } from "../../store/types.ts";
import { contains, parseAddress, parseCIDR, type Network } from "../../util/cidr.ts";

export interface ClientEntry {
  client: RadiusClient;
  /** The shared secret as bytes, ready for the codec. */
  secret: Uint8Array;
}

export class ClientTable {
  private readonly entries: { net: Network; entry: ClientEntry }[];
  private readonly cache = new Map<string, ClientEntry | null>();

  /** Clients whose address does not parse are skipped and returned in `invalid` for the caller to log. */
  constructor(clients: RadiusClient[]) {
    this.entries = [];
    this.invalid = [];
    for (const client of clients) {
      const net = parseCIDR(client.address);
      if (!net) {
        this.invalid.push(client.name);
        continue;
      }
      this.entries.push({ net, entry: { client, secret: new TextEncoder().encode(client.secret) } });
    }
    // longest prefix first, so a /32 inside a /24 wins
    this.entries.sort((a, b) => b.net.prefix - a.net.prefix);
  }

  readonly invalid: string[];

  get size(): number {
    return this.entries.length;
  }

  /** The client for a source address, or undefined (the packet is then silently discarded). */
  lookup(source: string): ClientEntry | undefined {
    const cached = this.cache.get(source);
    if (cached !== undefined) return cached ?? undefined;
    const addr = parseAddress(source);
    const found = addr ? this.entries.find((e) => contains(e.net, addr))?.entry : undefined;
    if (this.cache.size > 65_536) this.cache.clear(); // bounded: spoofed sources cannot grow it forever
    this.cache.set(source, found ?? null);
    return found;
  }
}
