// P-256 (NIST SP 800-186 §3.2.1.3, secp256r1) point validation by the curve equation.
//
// Key imports check their points here rather than trusting WebCrypto to refuse a point off the
// curve: Bun's importKey refuses one, Deno 2.9's accepts it (test/unit/devices/protocol.test.ts and
// test/unit/push/hosts.test.ts run under both).

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

function toBigInt(octets: Uint8Array): bigint {
  let n = 0n;
  for (const o of octets) n = (n << 8n) | BigInt(o);
  return n;
}

/** True when (x, y), each 32 big-endian octets, is a point of P-256: both below p and y² = x³ − 3x + b (mod p). */
export function isP256Point(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== 32 || y.length !== 32) return false;
  const X = toBigInt(x);
  const Y = toBigInt(y);
  if (X >= P || Y >= P) return false;
  const left = (Y * Y) % P;
  const right = (((((X * X) % P) * X) % P) - 3n * X + B) % P;
  return left === (right + P) % P;
}

/** True for an uncompressed SEC 1 point (0x04 ‖ x ‖ y, 65 octets) on P-256. */
export function isUncompressedP256Point(point: Uint8Array): boolean {
  return point.length === 65 && point[0] === 0x04 && isP256Point(point.subarray(1, 33), point.subarray(33, 65));
}
