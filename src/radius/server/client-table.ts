// The RADIUS client table: source address → client (longest prefix wins), with a per-source cache;
// and how the clients' networks overlap, for `client list` and the admin API.

import type { RadiusClient } from "../../store/types.ts";
import { contains, covers, formatNetwork, networkSize, parseAddress, parseCIDR, type Network } from "../../util/cidr.ts";

export interface ClientEntry {
  client: RadiusClient;
  /** The shared secret as bytes, ready for the codec. */
  secret: Uint8Array;
}

/**
 * The clients in the order a source address is matched against them: the longest prefix first, so
 * that a /32 inside a /24 wins; clients with the same prefix keep their given order (the store
 * lists them by name), which decides between two clients with the very same network. Clients whose
 * address does not parse are returned apart: they are never matched.
 */
export function matchOrder(clients: readonly RadiusClient[]): { ordered: { client: RadiusClient; net: Network }[]; invalid: RadiusClient[] } {
  const ordered: { client: RadiusClient; net: Network }[] = [];
  const invalid: RadiusClient[] = [];
  for (const client of clients) {
    const net = parseCIDR(client.address);
    if (net) ordered.push({ client, net });
    else invalid.push(client);
  }
  ordered.sort((a, b) => b.net.prefix - a.net.prefix); // stable
  return { ordered, invalid };
}

export class ClientTable {
  private readonly entries: { net: Network; entry: ClientEntry }[];
  private readonly cache = new Map<string, ClientEntry | null>();
  /** Clients whose address does not parse, by name, for the caller to log. */
  readonly invalid: string[];
  /**
   * Clients with exactly the network of a client ahead of them (stored before `client add` refused
   * that), which therefore never match: for the caller to log.
   */
  readonly duplicates: { client: string; network: string; winner: string }[] = [];

  constructor(clients: RadiusClient[]) {
    const { ordered, invalid } = matchOrder(clients);
    this.invalid = invalid.map((c) => c.name);
    this.entries = ordered.map(({ client, net }) => ({ net, entry: { client, secret: new TextEncoder().encode(client.secret) } }));
    const first = new Map<string, string>();
    for (const { client, net } of ordered) {
      const network = formatNetwork(net);
      const winner = first.get(network);
      if (winner === undefined) first.set(network, client.name);
      else this.duplicates.push({ client: client.name, network, winner });
    }
  }

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

/** How one client's network relates to the others' (the table matches the most specific network first). */
export interface ClientOverlap {
  /** The network as matched: host bits cleared, IPv4-mapped IPv6 written as IPv4; null when the address does not parse. */
  network: string | null;
  /** Clients with a wider network containing this one's (or the same one, behind it): for these addresses this client wins over them. */
  shadows: string[];
  /** Clients matched instead of this one for part of its network (narrower networks inside it) or all of it (`duplicateOf`). */
  shadowedBy: string[];
  /** The client ahead of this one with exactly the same network (stored before `client add` refused that); null otherwise. */
  duplicateOf: string | null;
  /** No source address can ever reach this client: a duplicate, a network wholly covered by narrower clients, or an address that does not parse. */
  unreachable: boolean;
}

/**
 * The overlaps of every client, by name, with names listed in match order (most specific first).
 * CIDR networks never partly overlap: two are disjoint or one contains the other. So one pass over
 * the distinct networks sorted by address, then widest first, with a stack of the networks that
 * contain the current one, finds every containment; a network is wholly covered when its direct
 * sub-networks (disjoint) add up to its size.
 */
export function clientOverlaps(clients: readonly RadiusClient[]): Map<string, ClientOverlap> {
  const { ordered, invalid } = matchOrder(clients);
  const result = new Map<string, ClientOverlap>();
  for (const c of invalid) result.set(c.name, { network: null, shadows: [], shadowedBy: [], duplicateOf: null, unreachable: true });

  // One node per distinct network: the clients holding it, the first (in match order) matched.
  interface Node {
    net: Network;
    members: RadiusClient[];
    outer: Node[];
    inner: Node[];
    children: Node[];
  }
  const byNetwork = new Map<string, Node>();
  for (const { client, net } of ordered) {
    const network = formatNetwork(net);
    let node = byNetwork.get(network);
    if (!node) byNetwork.set(network, (node = { net, members: [], outer: [], inner: [], children: [] }));
    node.members.push(client);
    result.set(client.name, { network, shadows: [], shadowedBy: [], duplicateOf: null, unreachable: false });
  }
  const nodes = [...byNetwork.values()].sort(
    (a, b) => a.net.family - b.net.family || (a.net.base < b.net.base ? -1 : a.net.base > b.net.base ? 1 : 0) || a.net.prefix - b.net.prefix,
  );
  const stack: Node[] = [];
  for (const node of nodes) {
    while (stack.length > 0 && !covers(stack[stack.length - 1]!.net, node.net)) stack.pop();
    if (stack.length > 0) stack[stack.length - 1]!.children.push(node);
    for (const outer of stack) {
      outer.inner.push(node);
      node.outer.push(outer);
    }
    stack.push(node);
  }

  const rank = new Map(ordered.map(({ client }, i) => [client, i]));
  const inMatchOrder = (list: RadiusClient[]) => list.sort((a, b) => rank.get(a)! - rank.get(b)!).map((c) => c.name);
  for (const node of nodes) {
    const [winner, ...behind] = node.members as [RadiusClient, ...RadiusClient[]];
    const w = result.get(winner.name)!;
    w.shadows = inMatchOrder([...behind, ...node.outer.flatMap((n) => n.members)]);
    w.shadowedBy = inMatchOrder(node.inner.map((n) => n.members[0]!));
    w.unreachable = node.children.reduce((sum, n) => sum + networkSize(n.net), 0n) === networkSize(node.net);
    for (const c of behind) {
      const d = result.get(c.name)!;
      d.shadowedBy = [winner.name];
      d.duplicateOf = winner.name;
      d.unreachable = true;
    }
  }
  return result;
}
