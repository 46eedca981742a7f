// The approver app's icons, drawn in code and encoded as PNG on first use: a portcullis (a grated
// gate) in white on the app's blue. No image files to embed; every size is drawn from one shape.
//
// Two variants: "any" (a rounded square with transparent corners) and "maskable" (the colour fills
// the whole square and the gate stays inside the central 80 % circle that launchers may cut out).

import { deflateSync } from "node:zlib";

/** The app's colour (also the manifest's theme colour). */
export const APP_BLUE = "#1a56db";
const BLUE: [number, number, number] = [0x1a, 0x56, 0xdb];

export type IconVariant = "any" | "maskable";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG (8-bit RGBA, no interlace) of `size`×`size` pixels from `rgba` (size*size*4 bytes). */
export function encodePng(size: number, rgba: Uint8Array): Uint8Array {
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, size);
  hv.setUint32(4, size);
  header.set([8, 6, 0, 0, 0], 8);
  // Each row: filter type 0 (None), then the row's pixels.
  const raw = new Uint8Array(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) raw.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const BAR_HALF = 0.045;

/**
 * Whether the gate covers (u, v) in the unit square of the gate's box: a rounded arch frame
 * with three vertical bars ending in points and two cross bars.
 */
function gate(u: number, v: number): boolean {
  if (u < 0 || u > 1 || v < 0 || v > 1) return false;
  const frame = 0.09;
  // The arch: the top is a half circle of radius 0.5 centred at (0.5, 0.5).
  const dx = u - 0.5;
  const dy = v - 0.5;
  const r = Math.sqrt(dx * dx + dy * dy);
  const inArchZone = v < 0.5;
  const outside = inArchZone ? r > 0.5 : false;
  if (outside) return false;
  const onFrame = inArchZone ? r > 0.5 - frame : u < frame || u > 1 - frame;
  if (onFrame) return true;
  // Cross bars.
  if (Math.abs(v - 0.42) < 0.04 || Math.abs(v - 0.66) < 0.04) return true;
  // Three bars, each ending in a point just above the bottom.
  const tip = 0.96;
  const taper = 0.1;
  if (v > tip) return false;
  const w = v > tip - taper ? BAR_HALF * ((tip - v) / taper) : BAR_HALF;
  return Math.abs(u - 0.3) <= w || Math.abs(u - 0.5) <= w || Math.abs(u - 0.7) <= w;
}

/** The icon's pixels: `variant` as described in the file comment, 3×3 supersampled edges. */
function draw(size: number, variant: IconVariant): Uint8Array {
  const rgba = new Uint8Array(size * size * 4);
  // The gate's box within the icon, in unit coordinates.
  const box = variant === "maskable" ? { x: 0.3, y: 0.26, w: 0.4, h: 0.48 } : { x: 0.22, y: 0.16, w: 0.56, h: 0.68 };
  const corner = 0.2;
  const S = 3;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let bg = 0;
      let fg = 0;
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const x = (px + (sx + 0.5) / S) / size;
          const y = (py + (sy + 0.5) / S) / size;
          let inBg = true;
          if (variant === "any") {
            // Rounded square: outside the corner circles is transparent.
            const cx = Math.min(Math.max(x, corner), 1 - corner);
            const cy = Math.min(Math.max(y, corner), 1 - corner);
            inBg = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= corner * corner;
          }
          if (!inBg) continue;
          bg++;
          if (gate((x - box.x) / box.w, (y - box.y) / box.h)) fg++;
        }
      }
      const i = (py * size + px) * 4;
      const a = bg / (S * S);
      const f = bg === 0 ? 0 : fg / bg;
      rgba[i] = Math.round(BLUE[0] + (255 - BLUE[0]) * f);
      rgba[i + 1] = Math.round(BLUE[1] + (255 - BLUE[1]) * f);
      rgba[i + 2] = Math.round(BLUE[2] + (255 - BLUE[2]) * f);
      rgba[i + 3] = Math.round(255 * a);
    }
  }
  return rgba;
}

/** The icons the app serves: file name → size and variant. */
export const ICONS: Record<string, { size: number; variant: IconVariant }> = {
  "icon-192.png": { size: 192, variant: "any" },
  "icon-512.png": { size: 512, variant: "any" },
  "maskable-192.png": { size: 192, variant: "maskable" },
  "maskable-512.png": { size: 512, variant: "maskable" },
  // iOS's Home Screen icon (it ignores the manifest's icons and rounds the corners itself).
  "apple-touch-icon.png": { size: 180, variant: "maskable" },
};

const cache = new Map<string, Uint8Array>();

/** The PNG bytes of icon `name` (a key of ICONS), drawn once and cached; undefined for another name. */
export function iconPng(name: string): Uint8Array | undefined {
  const spec = Object.hasOwn(ICONS, name) ? ICONS[name] : undefined;
  if (!spec) return undefined;
  let png = cache.get(name);
  if (!png) {
    png = encodePng(spec.size, draw(spec.size, spec.variant));
    cache.set(name, png);
  }
  return png;
}
