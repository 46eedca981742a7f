// User-Password hiding (RFC 2865 §5.2): XOR with an MD5 keystream chained from the Request Authenticator.
//
//   b1 = MD5(S + RA)       c(1) = p1 xor b1
//   b2 = MD5(S + c(1))     c(2) = p2 xor b2
//   ...                    c(i) = pi xor bi        (16-octet blocks, p NUL-padded)

import { md5Into } from "../../runtime/hash.ts";
import { AUTHENTICATOR_LENGTH } from "./constants.ts";
import { RADIUSError } from "./errors.ts";

/** RFC 2865 §5.2: the password is at most 128 octets. */
export const MAX_USER_PASSWORD_LENGTH = 128;
const BLOCK = 16;
/** One MD5 keystream block (b1, b2, … above), reused by every call and zeroed after each. */
const keystream = new Uint8Array(BLOCK);

function checkAuthenticator(requestAuthenticator: Uint8Array): void {
  if (requestAuthenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new TypeError("requestAuthenticator must be 16 octets");
  }
}

/**
 * Hides a password for an Access-Request (RFC 2865 §5.2). The result is the password padded
 * with NULs to a multiple of 16 (at least 16) and XORed with the keystream.
 * @throws TypeError when the password is longer than 128 octets or the authenticator is not
 *   16 octets (caller bugs; the message never contains the password).
 */
export function hideUserPassword(
  password: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  checkAuthenticator(requestAuthenticator);
  if (password.length > MAX_USER_PASSWORD_LENGTH) {
    throw new TypeError("User-Password longer than 128 octets (RFC 2865 §5.2)");
  }
  const blocks = Math.max(1, Math.ceil(password.length / BLOCK));
  const out = new Uint8Array(blocks * BLOCK);
  out.set(password);
  let chain: Uint8Array = requestAuthenticator;
  for (let i = 0; i < blocks; i++) {
    const b = md5Into(secret, chain, keystream);
    const base = i * BLOCK;
    for (let j = 0; j < BLOCK; j++) out[base + j] = out[base + j]! ^ b[j]!;
    chain = out.subarray(base, base + BLOCK);
  }
  keystream.fill(0);
  return out;
}

/**
 * Reveals a hidden User-Password and strips the trailing NUL padding (RFC 2865 §5.2). Only
 * trailing NULs are removed: a NUL inside the password is kept, so "secret\0junk" never
 * compares equal to "secret". The caller should zero the result once it is checked.
 * @throws RADIUSError("malformed") when the hidden value is not 16..128 octets or not a
 *   multiple of 16 (untrusted input).
 * @throws TypeError when the authenticator is not 16 octets.
 */
export function revealUserPassword(
  hidden: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  checkAuthenticator(requestAuthenticator);
  const n = hidden.length;
  if (n < BLOCK || n > MAX_USER_PASSWORD_LENGTH || n % BLOCK !== 0) {
    throw new RADIUSError("malformed");
  }
  const out = new Uint8Array(n);
  let chain: Uint8Array = requestAuthenticator;
  for (let base = 0; base < n; base += BLOCK) {
    const b = md5Into(secret, chain, keystream);
    for (let j = 0; j < BLOCK; j++) out[base + j] = hidden[base + j]! ^ b[j]!;
    if (base + BLOCK < n) chain = hidden.subarray(base, base + BLOCK);
  }
  // The keystream block XORed with the hidden value gives the password: do not leave it around.
  keystream.fill(0);
  let end = n;
  while (end > 0 && out[end - 1] === 0) end--;
  if (end === n) return out;
  // A copy of the right length rather than a view: the first view of a freshly allocated array
  // costs JSC an ArrayBuffer of its own (measured on Bun 1.4.5: about 0.2 µs, the most expensive
  // step here), and the padded original is zeroed so that only the returned copy holds the password.
  const password = out.slice(0, end);
  out.fill(0);
  return password;
}
