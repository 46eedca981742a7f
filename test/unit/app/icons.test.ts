// The app's icons (src/app/icons.ts): valid PNGs (signature, chunk CRCs, the IDAT inflates to one
// filter byte plus RGBA per row), the stated size, and the two variants' shapes: "any" has
// transparent corners, "maskable" is opaque edge to edge with the gate inside the central circle.

import { describe, expect, test } from "bun:test";
import { inflateSync } from "node:zlib";
import { ICONS, encodePng, iconPng } from "../../../src/app/icons.ts";

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Decodes the PNGs encodePng makes (RGBA, filter 0): size and pixels; throws on a bad chunk. */
function decode(png: Uint8Array): { size: number; rgba: Uint8Array } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  let size = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (at < png.length) {
    const len = v.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + len);
    expect(v.getUint32(at + 8 + len)).toBe(crc32(png.subarray(at + 4, at + 8 + len)));
    types.push(type);
    if (type === "IHDR") {
      size = new DataView(data.buffer, data.byteOffset).getUint32(0);
      expect(new DataView(data.buffer, data.byteOffset).getUint32(4)).toBe(size);
      expect([...data.subarray(8)]).toEqual([8, 6, 0, 0, 0]);
    }
    if (type === "IDAT") idat.push(data);
    at += 12 + len;
  }
  expect(types).toEqual(["IHDR", "IDAT", "IEND"]);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(size * (size * 4 + 1));
  const rgba = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    expect(raw[y * (size * 4 + 1)]).toBe(0);
    rgba.set(raw.subarray(y * (size * 4 + 1) + 1, (y + 1) * (size * 4 + 1)), y * size * 4);
  }
  return { size, rgba };
}

const alpha = (img: { size: number; rgba: Uint8Array }, x: number, y: number) => img.rgba[(y * img.size + x) * 4 + 3];
const red = (img: { size: number; rgba: Uint8Array }, x: number, y: number) => img.rgba[(y * img.size + x) * 4];

describe("app icons", () => {
  test("encodePng round-trips a small image", () => {
    const rgba = new Uint8Array(2 * 2 * 4).map((_, i) => i * 7);
    expect(decode(encodePng(2, rgba))).toEqual({ size: 2, rgba });
  });

  test.each(Object.entries(ICONS))("%s: a valid PNG of its stated size and shape", (name, { size, variant }) => {
    const img = decode(iconPng(name)!);
    expect(img.size).toBe(size);
    const c = Math.floor(size / 2);
    if (variant === "any") {
      expect(alpha(img, 0, 0)).toBe(0);
      expect(alpha(img, size - 1, size - 1)).toBe(0);
    } else {
      for (const [x, y] of [[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]]) expect(alpha(img, x!, y!)).toBe(255);
      // Maskable: everything outside the central 80 % circle (the safe zone) is background only.
      const r = 0.4 * size;
      let outsideSafeZone = 0;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          if (Math.hypot(x + 0.5 - size / 2, y + 0.5 - size / 2) > r && red(img, x, y) !== 0x1a) outsideSafeZone++;
        }
      }
      expect(outsideSafeZone).toBe(0);
    }
    expect(alpha(img, c, c)).toBe(255);
  });

  test("an unknown name has no icon; the same bytes are served twice", () => {
    expect(iconPng("nope.png")).toBeUndefined();
    expect(iconPng("__proto__")).toBeUndefined();
    expect(iconPng("icon-192.png")).toBe(iconPng("icon-192.png")!);
  });
});
