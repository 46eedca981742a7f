// Public API of the OTP module: named re-exports only.

export { OTPError, type OTPErrorCode } from "./errors.ts";
export {
  generateHOTP,
  verifyHOTP,
  resyncHOTP,
  validateOTPParams,
  isCodeFormat,
  MIN_SECRET_BYTES,
  RECOMMENDED_MIN_SECRET_BYTES,
  MAX_SECRET_BYTES,
  type OTPParams,
  type OTPAlgorithm,
} from "./hotp.ts";
export { generateTOTP, verifyTOTP, resyncTOTP, timeStep, type TOTPParams, type VerifyTOTPResult } from "./totp.ts";
export { encodeBase32, decodeBase32 } from "./base32.ts";
export { generateSecret } from "./secret.ts";
export { otpauthURI, type OTPAuthURIInput } from "./uri.ts";
export { terminalQR, svgQR } from "./qr.ts";
export { parsePSKC, type PSKCOptions } from "./pskc.ts";
export { parseTokenCSV } from "./csv.ts";
export type { ImportedToken } from "./imported-token.ts";
