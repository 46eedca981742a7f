// Delivery with SMS-pumping defences: validate and allow-list the destination, apply shared rate limits, then try channels in order.
//
// SMS pumping (toll fraud) spreads traffic over many premium-rate numbers, so a per-number limit
// alone does not stop it. Every request therefore passes, in this order:
//   1. E.164 validation (local formats read in the configured region);
//   2. the destination allow-list: a listed prefix, or a listed country and a mobile number (a
//      premium-rate, shared-cost or fixed-line number needs its prefix listed);
//   3. optionally, "the number belongs to a known user" (per endpoint);
//   4. sliding-window limits per number, per e-mail address, per API key and overall (never more
//      than the limit in any 60 s or any hour), counted in the store so that a cluster shares them
//      (a refused request counts nothing);
// and only then reaches the channels, tried in order until one accepts. Each attempt and each
// refusal leaves a delivery-log row with a masked destination, never the text or the link.

import { createHash } from "node:crypto";
import type { DeliveryEvent } from "../audit/events.ts";
import { log } from "../audit/log.ts";
import type { DeliveryLogRepo, NewDeliveryLogEntry, RateBucket, RateLimitRepo } from "../store/types.ts";
import { destinationRefusal, maskEmail, maskNumber, parseDestination, type AllowList, type Destination } from "./phone.ts";
import type { Channel, ChannelFailure } from "./types.ts";

/** Limits per minute and per hour; 0 turns one off. */
export interface RateLimitSettings {
  perNumberPerMinute: number;
  perNumberPerHour: number;
  perKeyPerMinute: number;
  perKeyPerHour: number;
  overallPerMinute: number;
  overallPerHour: number;
}

export const DEFAULT_LIMITS: RateLimitSettings = {
  perNumberPerMinute: 5,
  perNumberPerHour: 30,
  perKeyPerMinute: 30,
  perKeyPerHour: 300,
  overallPerMinute: 120,
  overallPerHour: 1000,
};

export type RefusalReason = "rate_limited" | "country_not_allowed" | "number_type_not_allowed" | "invalid_number" | "unknown_user" | "all_channels_failed";

export interface DeliveryRequest {
  /** Phone number as the caller gave it (E.164, or local format in the configured region). */
  msisdn?: string;
  /** E-mail address, used by e-mail channels. */
  email?: string;
  /** The finished text (see buildSmsText); it must already carry the link. */
  text: string;
  /** E-mail subject. */
  subject?: string;
  /** Endpoint profile name, for the log and metrics. */
  endpoint: string;
  /** The API key's ID (never the key), for the per-key limit and the log. */
  apiKeyId: string;
  /** The endpoint requires the number to belong to a known user (isKnownNumber). */
  requireKnownUser?: boolean;
  /** The endpoint's own per-key limits, replacing the configured ones. */
  keyLimits?: { perMinute: number; perHour: number };
  /** Aborts between and during channel attempts (the waiting caller went away). */
  signal?: AbortSignal;
}

export type DispatchResult = { ok: true; channel: string } | { ok: false; reason: RefusalReason; detail: string };

export interface DispatcherHooks {
  /** After every channel attempt: metrics (deliveries by channel, result and country). */
  onDelivered?(channel: string, result: "ok" | ChannelFailure, country: string | undefined): void;
  /** After a request is refused before any channel. */
  onRefused?(reason: RefusalReason, country: string | undefined): void;
}

export interface DispatcherOptions extends DispatcherHooks {
  /** Channels in failover order. SMS channels need a number, e-mail channels an address. */
  channels: readonly Channel[];
  /** ISO 3166 country for numbers in local format; "" accepts E.164 only. */
  region: string;
  allowList: AllowList;
  limits?: RateLimitSettings;
  rateLimits: RateLimitRepo;
  deliveryLog: DeliveryLogRepo;
  /**
   * Does this E.164 number belong to a known user? Needed by endpoints with requireKnownUser; a
   * missing callback or one that throws refuses the request (fails closed).
   */
  isKnownNumber?(e164: string): Promise<boolean>;
  now?: () => number;
  /** Typed audit events: delivery.refused and delivery.failed (masked destination, never the text). */
  audit?: (event: DeliveryEvent) => void;
}

export interface Dispatcher {
  /** Never throws for a delivery problem; a store failure (StoreError) propagates. */
  deliver(request: DeliveryRequest): Promise<DispatchResult>;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

/**
 * A rate-limit counter's subject (a number, an address, a key ID, an endpoint name) as a hash: the
 * counters table is not a contact list. Shared by every bucket that goes through RateLimitRepo.
 */
export function subjectHash(s: string): string {
  return createHash("sha256").update(`portcullis-rate:${s}`).digest("base64url").slice(0, 22);
}

function isEmailAddress(s: string): boolean {
  return s.length <= 254 && /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:".]{2,}$/.test(s);
}

const LIMIT_NAMES: Record<string, string> = {
  number: "per-number",
  email: "per-address",
  key: "per-API-key",
  all: "overall",
};

/**
 * A dispatcher over `channels`.
 *
 * @throws TypeError when a limit is negative or not an integer.
 */
export function createDispatcher(opts: DispatcherOptions): Dispatcher {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  for (const [k, n] of Object.entries(limits)) {
    if (!Number.isInteger(n) || n < 0) throw new TypeError(`delivery limits: ${k} must be a non-negative integer`);
  }
  const now = opts.now ?? Date.now;

  async function writeLog(entry: Omit<NewDeliveryLogEntry, "at">): Promise<void> {
    try {
      await opts.deliveryLog.append({ at: now(), ...entry });
    } catch (err) {
      log("error", "delivery.log_failed", { code: (err as { code?: string }).code ?? "unknown" });
    }
  }

  function buckets(req: DeliveryRequest, dest: Destination | undefined, email: string | undefined): RateBucket[] {
    const out: RateBucket[] = [];
    const add = (kind: string, subject: string, perMinute: number, perHour: number) => {
      if (perMinute > 0) out.push({ key: `${kind}:${subject}:m`, windowMs: MINUTE, limit: perMinute });
      if (perHour > 0) out.push({ key: `${kind}:${subject}:h`, windowMs: HOUR, limit: perHour });
    };
    if (dest) add("number", subjectHash(dest.e164), limits.perNumberPerMinute, limits.perNumberPerHour);
    if (email) add("email", subjectHash(email.toLowerCase()), limits.perNumberPerMinute, limits.perNumberPerHour);
    add("key", subjectHash(req.apiKeyId), req.keyLimits?.perMinute ?? limits.perKeyPerMinute, req.keyLimits?.perHour ?? limits.perKeyPerHour);
    add("all", "all", limits.overallPerMinute, limits.overallPerHour);
    return out;
  }

  return {
    async deliver(req: DeliveryRequest): Promise<DispatchResult> {
      const base = { endpoint: req.endpoint, apiKeyId: req.apiKeyId, providerId: null };
      let dest: Destination | undefined;
      let destination = "";
      const refuse = async (reason: RefusalReason, detail: string): Promise<DispatchResult> => {
        await writeLog({ ...base, channel: null, destination: destination || "-", country: dest?.country ?? null, result: "refused", reason, detail });
        opts.onRefused?.(reason, dest?.country);
        opts.audit?.({ type: "delivery.refused", endpoint: req.endpoint, to: destination || "-", country: dest?.country ?? null, reason, detail });
        return { ok: false, reason, detail };
      };

      // 1-2. The number: valid, then allowed (country and type, or an explicit prefix).
      if (req.msisdn !== undefined && req.msisdn.trim() !== "") {
        dest = parseDestination(req.msisdn, opts.region);
        if (!dest) return refuse("invalid_number", opts.region ? "not a valid phone number" : "not a valid E.164 phone number");
        destination = maskNumber(dest);
        const refusal = destinationRefusal(dest, opts.allowList);
        if (refusal) return refuse(refusal.reason, refusal.detail);
      }
      const email = req.email !== undefined && isEmailAddress(req.email.trim()) ? req.email.trim() : undefined;
      if (!destination && email) destination = maskEmail(email);
      if (!dest && !email) return refuse("invalid_number", "no valid phone number or e-mail address");

      // 3. Known user (fails closed without a number or without the callback).
      if (req.requireKnownUser) {
        let known = false;
        try {
          known = dest !== undefined && opts.isKnownNumber !== undefined && (await opts.isKnownNumber(dest.e164));
        } catch {
          // A directory that cannot answer does not vouch for anyone.
          return refuse("unknown_user", "the user lookup failed");
        }
        if (!known) return refuse("unknown_user", "the number does not belong to a known user");
      }

      const usable = opts.channels.filter((c) => (c.kind === "sms" ? dest !== undefined : email !== undefined));
      if (usable.length === 0) return refuse("all_channels_failed", "no configured channel can reach this destination");

      // 4. Shared rate limits, counted only when every one has room.
      const decision = await opts.rateLimits.consume(buckets(req, dest, email), now());
      if (!decision.allowed) {
        const [kind, , window] = decision.bucket.split(":");
        return refuse("rate_limited", `${LIMIT_NAMES[kind ?? ""] ?? "a"} limit per ${window === "h" ? "hour" : "minute"} reached`);
      }

      // 5. Channels in order.
      const failures: string[] = [];
      for (const channel of usable) {
        if (req.signal?.aborted) {
          failures.push("aborted");
          break;
        }
        const to = channel.kind === "sms" ? dest!.e164 : email!;
        const masked = channel.kind === "sms" ? maskNumber(dest!) : maskEmail(email!);
        const country = channel.kind === "sms" ? dest!.country : undefined;
        const result = await channel.send({ to, text: req.text, subject: req.subject }, { signal: req.signal });
        await writeLog({
          ...base,
          channel: channel.name,
          destination: masked,
          country: country ?? null,
          result: result.ok ? "sent" : "failed",
          reason: result.ok ? null : result.reason,
          detail: result.ok ? null : result.detail,
          providerId: result.ok ? (result.providerId ?? null) : null,
        });
        opts.onDelivered?.(channel.name, result.ok ? "ok" : result.reason, country);
        if (result.ok) return { ok: true, channel: channel.name };
        opts.audit?.({ type: "delivery.failed", channel: channel.name, endpoint: req.endpoint, to: masked, reason: result.reason, detail: result.detail });
        failures.push(`${channel.name}: ${result.reason}`);
      }
      return { ok: false, reason: "all_channels_failed", detail: failures.join("; ") };
    },
  };
}
