// Where an attempt comes from, for the lockout: the Calling-Station-Id the NAS reported (RFC 2865
// §5.31: the calling station, a VPN client's address or a Wi-Fi client's MAC), else the NAS itself.
//
// A source is a short printable string that the store keys counters by and `user show` displays:
//   "csid:<value>"  the Calling-Station-Id, trimmed, lower-cased, other than printable ASCII replaced
//                   by "?", at most MAX_STATION_LENGTH characters;
//   "nas:<client>"  the RADIUS client's name, when the request carries no Calling-Station-Id.
// The prefixes keep the two kinds apart whatever a station identifier looks like.

import type { Attempt, Channel } from "./attempt.ts";

/** Longest Calling-Station-Id kept: room for an IPv6 address with a port, a MAC, or a phone number. */
export const MAX_STATION_LENGTH = 64;

const NOT_PRINTABLE = /[^\x20-\x7e]/g;

/** The source of a Calling-Station-Id value; undefined when nothing printable is left of it. */
export function stationSource(value: string): string | undefined {
  const s = value.replace(NOT_PRINTABLE, "?").trim().toLowerCase().slice(0, MAX_STATION_LENGTH).trim();
  return s === "" ? undefined : `csid:${s}`;
}

const nasSources = new WeakMap<Channel, string>();

/** The source of a request without a Calling-Station-Id: its channel (made once per channel object). */
export function channelSource(channel: Channel): string {
  let source = nasSources.get(channel);
  if (source === undefined) {
    source = `nas:${channel.name}`;
    nasSources.set(channel, source);
  }
  return source;
}

/** The lockout source of an attempt: its Calling-Station-Id's, else its channel's. */
export function sourceOf(attempt: Attempt): string {
  return attempt.source ?? channelSource(attempt.channel);
}
