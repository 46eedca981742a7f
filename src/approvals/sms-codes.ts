// SMS one-time codes for challenges (type 2 `mobile`, the SMS-code step of `touch-mobile`): issue a
// code bound to the challenge State, client and user, send it, and check what the user typed back.

import { timingSafeEqual } from "node:crypto";
import type { SmsCodeEvent } from "../audit/events.ts";
import type { RefusalReason } from "../delivery/dispatcher.ts";
import { maskNumber, parseDestination } from "../delivery/phone.ts";
import type { SmsCodeRepo } from "../store/types.ts";
import { sendText, type TextSender, type TextTarget } from "./send.ts";
import { DEFAULT_SMS_CODE_FORMAT, DEFAULT_SMS_CODE_TEMPLATE, generateSmsCode, hashSmsCode, smsCodeText, type SmsCodeBinding, type SmsCodeFormat } from "./sms-code.ts";

/** Default lifetime of a code: 5 minutes. */
export const SMS_CODE_LIFETIME_MS = 300_000;
/** Default wrong codes before a code is invalidated. */
export const SMS_CODE_MAX_FAILURES = 3;

/** Every result counted in `portcullis_sms_codes_total{result}`. */
export type SmsCodeMetric = "issued" | "not_delivered" | VerifyResult["result"];

/**
 * What a check found:
 * - `accepted`: the code matched and this call consumed it (no other call, in any process, will);
 * - `wrong`: it did not match; `remaining` wrong codes are left before it is invalidated;
 * - `invalidated`: it did not match and that was the last wrong code allowed: the code is gone;
 * - `mismatch`: the State's code belongs to another client or user (counted as a wrong code);
 * - `unknown`: no live code for this State (never issued, expired, used, invalidated, or replaced).
 */
export type VerifyResult =
  | { result: "accepted" }
  | { result: "wrong"; remaining: number }
  | { result: "invalidated" }
  | { result: "mismatch" }
  | { result: "unknown" };

/** `to`: the destination as a prompt may name it: the masked number ("+46…67"), or "-" when only an e-mail address was used. */
export type SendResult = { ok: true; channel: string; expiresAt: number; to: string } | { ok: false; reason: RefusalReason; detail: string };

export interface SmsCodesOptions extends TextSender {
  codes: SmsCodeRepo;
  /** The store's server secret (≥32 bytes), the HMAC key of the stored hashes. */
  secret: Uint8Array;
  now(): number;
  random(n: number): Uint8Array;
  /** `[delivery] sms_code_template`: `{code}` and optionally `{client}`. Default DEFAULT_SMS_CODE_TEMPLATE. */
  template?: string;
  /** Default format when a call names none (`[delivery] sms_code_length`, `sms_code_alphabet`). */
  format?: SmsCodeFormat;
  /** How long a code lives (ms). Default 5 minutes. */
  lifetimeMs?: number;
  /** Wrong codes before a code is invalidated (≥1). Default 3. */
  maxFailures?: number;
  /** Top-level `region`, to mask a local-format number in events. */
  region?: string;
  audit?(event: SmsCodeEvent): void;
  /** Every issue, failed delivery and check (metrics). */
  onResult?(result: SmsCodeMetric): void;
}

/**
 * SMS codes over the store. A store failure propagates from every method (StoreError); a bad
 * format throws TypeError.
 */
export class SmsCodes {
  private readonly lifetimeMs: number;
  private readonly maxFailures: number;

  /** Throws TypeError for a lifetime or failure limit that is not a positive integer. */
  constructor(private readonly o: SmsCodesOptions) {
    this.lifetimeMs = o.lifetimeMs ?? SMS_CODE_LIFETIME_MS;
    this.maxFailures = o.maxFailures ?? SMS_CODE_MAX_FAILURES;
    if (!Number.isSafeInteger(this.lifetimeMs) || this.lifetimeMs <= 0) throw new TypeError("SMS code lifetime must be a positive number of milliseconds");
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 1) throw new TypeError("SMS code failure limit must be at least 1");
  }

  /**
   * A fresh code for `binding`, stored hashed (replacing any earlier code for the same State). The
   * code itself is returned once, for the message; it is never stored or logged. `format` overrides
   * the service's default format part by part (a RADIUS client's own length or alphabet).
   */
  async issue(binding: SmsCodeBinding, format: Partial<SmsCodeFormat> = {}): Promise<{ code: string; expiresAt: number }> {
    const code = generateSmsCode({ ...(this.o.format ?? DEFAULT_SMS_CODE_FORMAT), ...format }, this.o.random);
    const now = this.o.now();
    const expiresAt = now + this.lifetimeMs;
    await this.o.codes.put({ state: binding.state, client: binding.client, user: binding.user, hash: hashSmsCode(this.o.secret, binding, code), createdAt: now, expiresAt, failures: 0 });
    this.o.onResult?.("issued");
    return { code, expiresAt };
  }

  /**
   * Issues a code and sends it (`clientLabel` fills `{client}`). When it cannot be delivered the code
   * is removed again (nobody could know it) and the refusal returned. `to.endpoint` and `to.rateKey`
   * name the limits it counts against ("radius:CLIENT" for a RADIUS client).
   */
  async send(binding: SmsCodeBinding, to: TextTarget, { format, clientLabel, signal }: { format?: Partial<SmsCodeFormat>; clientLabel?: string; signal?: AbortSignal } = {}): Promise<SendResult> {
    const { code, expiresAt } = await this.issue(binding, format);
    const text = smsCodeText(this.o.template ?? DEFAULT_SMS_CODE_TEMPLATE, code, clientLabel ?? binding.client);
    const dest = to.msisdn ? parseDestination(to.msisdn, this.o.region ?? "") : undefined;
    const masked = dest ? maskNumber(dest) : "-";
    let delivered;
    try {
      delivered = await sendText(this.o, to, text, signal);
    } catch (err) {
      await this.o.codes.remove(binding.state).catch(() => false);
      throw err;
    }
    if (!delivered.ok) {
      await this.o.codes.remove(binding.state);
      this.o.onResult?.("not_delivered");
      this.o.audit?.({ type: "sms_code.not_delivered", client: binding.client, user: binding.user, to: masked, reason: delivered.reason });
      return delivered;
    }
    this.o.audit?.({ type: "sms_code.sent", client: binding.client, user: binding.user, channel: delivered.channel, to: masked, expires_in_s: Math.round(this.lifetimeMs / 1000) });
    return { ok: true, channel: delivered.channel, expiresAt, to: masked };
  }

  /**
   * Checks what the user typed against the code of `binding.state`: the keyed hashes are compared
   * in constant time, then a match is consumed atomically (one conditional DELETE: accepted once
   * across processes), and a miss counts against the code (deleted at the limit).
   */
  async verify(binding: SmsCodeBinding, typed: string): Promise<VerifyResult> {
    const r = await this.check(binding, typed);
    this.o.onResult?.(r.result);
    return r;
  }

  private async check(binding: SmsCodeBinding, typed: string): Promise<VerifyResult> {
    const stored = await this.o.codes.find(binding.state, this.o.now());
    if (!stored) return { result: "unknown" };
    if (stored.client !== binding.client || stored.user !== binding.user) {
      const n = await this.o.codes.fail(binding.state, stored.hash, this.maxFailures);
      if (n !== undefined && n >= this.maxFailures) this.invalidated(stored, n);
      return { result: "mismatch" };
    }
    const want = Buffer.from(stored.hash, "hex");
    const got = Buffer.from(hashSmsCode(this.o.secret, binding, typed), "hex");
    if (want.length === got.length && timingSafeEqual(want, got)) {
      // Pinned to the row read: a code replaced meanwhile (a resend) is not consumed by the old one.
      return (await this.o.codes.consume(binding.state, stored.hash, this.o.now())) ? { result: "accepted" } : { result: "unknown" };
    }
    const n = await this.o.codes.fail(binding.state, stored.hash, this.maxFailures);
    if (n === undefined) return { result: "unknown" };
    if (n >= this.maxFailures) {
      this.invalidated(stored, n);
      return { result: "invalidated" };
    }
    return { result: "wrong", remaining: this.maxFailures - n };
  }

  private invalidated(code: { client: string; user: string }, failures: number): void {
    this.o.audit?.({ type: "sms_code.invalidated", client: code.client, user: code.user, failures });
  }

  /** Removes the code of a State (the challenge ended another way). True when there was one. */
  revoke(state: string): Promise<boolean> {
    return this.o.codes.remove(state);
  }
}

/** The `[delivery] sms_code_*` keys, as config/schema.ts parses them. */
export interface SmsCodeConfig {
  sms_code_template: string;
  sms_code_length: number;
  sms_code_alphabet: SmsCodeFormat["alphabet"];
  sms_code_lifetime_s: number;
  sms_code_max_failures: number;
}

/** The SmsCodes options that `[delivery] sms_code_*` set (validated at config load). */
export function smsCodeSettings(delivery: SmsCodeConfig): Required<Pick<SmsCodesOptions, "template" | "format" | "lifetimeMs" | "maxFailures">> {
  return {
    template: delivery.sms_code_template,
    format: { alphabet: delivery.sms_code_alphabet, length: delivery.sms_code_length },
    lifetimeMs: delivery.sms_code_lifetime_s * 1000,
    maxFailures: delivery.sms_code_max_failures,
  };
}
