// Typed error for untrusted OTP input (secrets, token files) and bad token parameters.

export type OTPErrorCode =
  | "bad_secret"
  | "bad_params"
  | "pskc_mac"
  | "pskc_format"
  | "pskc_key"
  | "csv_format";

/**
 * Raised for malformed secrets, token parameters or import files. `code` is stable and meant
 * to be switched on; `message` is safe to show an administrator: it never contains a seed,
 * a key, a password or a code.
 */
export class OTPError extends Error {
  readonly code: OTPErrorCode;

  constructor(code: OTPErrorCode, message: string = code) {
    super(message);
    this.name = "OTPError";
    this.code = code;
  }
}
