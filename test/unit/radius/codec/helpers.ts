// Shared helpers for the RADIUS codec tests: hex conversion and vector attribute values.

export const utf8 = new TextEncoder();

/** Hex (spaces allowed) → bytes. */
export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}

/** Bytes → lower-case hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** A vector attribute: its value given as text, hex, an integer or an IPv4 address. */
export interface VectorAttribute {
  name: string;
  type: number;
  text?: string;
  hex?: string;
  integer?: number;
  ipv4?: string;
}

/** The wire value of a vector attribute, computed independently of the codec. */
export function vectorValue(a: VectorAttribute): Uint8Array {
  if (a.text !== undefined) return utf8.encode(a.text);
  if (a.hex !== undefined) return hex(a.hex);
  if (a.integer !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(a.integer);
    return Uint8Array.from(b);
  }
  if (a.ipv4 !== undefined) return Uint8Array.from(a.ipv4.split(".").map(Number));
  throw new Error(`vector attribute ${a.name} has no value`);
}

/** Flips one bit of a copy. */
export function flipBit(b: Uint8Array, index: number, bit = 0): Uint8Array {
  const out = Uint8Array.from(b);
  out[index] = out[index]! ^ (1 << bit);
  return out;
}

/** Runs `fn` and returns the RADIUSError code it threw, or "no error" / the other error's name. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
    return "no error";
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? code : (err as Error).name;
  }
}
