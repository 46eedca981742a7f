// otpauth:// URIs in the Google Authenticator Key Uri Format, for QR provisioning.

import { encodeBase32 } from "./base32.ts";
import { OTPError } from "./errors.ts";
import type { OTPAlgorithm } from "./hotp.ts";

export interface OTPAuthURIInput {
  kind: "totp" | "hotp";
  issuer: string;
  account: string;
  secret: Uint8Array;
  algorithm: OTPAlgorithm;
  digits: 6 | 8;
  /** TOTP step in seconds; default 30. */
  period?: number;
  /** HOTP initial counter; default 0. */
  counter?: number;
}

/**
 * Builds `otpauth://TYPE/ISSUER:ACCOUNT?secret=…&issuer=…[&algorithm][&digits][&period|&counter]`.
 * Label parts and the issuer parameter are percent-encoded (a ":" inside the issuer becomes
 * %3A so it cannot be mistaken for the separator); the secret is unpadded base32. Default
 * values (SHA1, 6 digits, 30 s) are omitted as apps assume them, matching otplib's generateURI.
 * Throws OTPError("bad_params") for an empty issuer or account.
 */
export function otpauthURI(t: OTPAuthURIInput): string {
  if (!t.issuer) throw new OTPError("bad_params", "issuer must not be empty");
  if (!t.account) throw new OTPError("bad_params", "account must not be empty");
  const issuer = encodeURIComponent(t.issuer);
  const params = [`secret=${encodeBase32(t.secret)}`, `issuer=${issuer}`];
  if (t.algorithm !== "SHA1") params.push(`algorithm=${t.algorithm}`);
  if (t.digits !== 6) params.push(`digits=${t.digits}`);
  if (t.kind === "totp") {
    const period = t.period ?? 30;
    if (period !== 30) params.push(`period=${period}`);
  } else {
    params.push(`counter=${t.counter ?? 0}`);
  }
  return `otpauth://${t.kind}/${issuer}:${encodeURIComponent(t.account)}?${params.join("&")}`;
}
