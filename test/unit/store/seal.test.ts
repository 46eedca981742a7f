import { describe, expect, test } from "bun:test";
import { associatedData, openSealed, seal, sealedKeyId, type SealContext, type SealKey } from "../../../src/store/seal.ts";
import { StoreError } from "../../../src/store/types.ts";

const key: SealKey = { id: "0a1b2c3d", key: new Uint8Array(32).map((_, i) => i) };
const other: SealKey = { id: "0a1b2c3d", key: new Uint8Array(32).map((_, i) => 255 - i) };
const ctx: SealContext = { table: "tokens", column: "secret", rowKey: "TOTP0001" };
const plaintext = new TextEncoder().encode("12345678901234567890");
const lookup = (k: SealKey) => (id: string) => (id === k.id ? k.key : undefined);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err.code;
    throw err;
  }
  return undefined;
}

describe("seal / openSealed", () => {
  test("round trip; format v1.<keyId>.<nonce>.<ciphertext+tag>", () => {
    const sealed = seal(key, plaintext, ctx);
    const parts = sealed.split(".");
    expect(parts[0]).toBe("v1");
    expect(parts[1]).toBe(key.id);
    expect(Buffer.from(parts[2]!, "base64url").length).toBe(12);
    expect(Buffer.from(parts[3]!, "base64url").length).toBe(plaintext.length + 16);
    expect(sealedKeyId(sealed)).toBe(key.id);
    expect(openSealed(lookup(key), sealed, ctx)).toEqual(plaintext);
  });

  // Pinned vector, cross-checked with Python's `cryptography` AESGCM(key).encrypt(nonce, pt, ad):
  // a change to the format or the associated data would make stored secrets unreadable.
  test("pinned vector: fixed key and nonce give a fixed stored value", () => {
    const nonce = new Uint8Array(12).fill(9);
    expect(new TextDecoder().decode(associatedData(ctx, key.id))).toBe("portcullis:v1:tokens:secret:TOTP0001:0a1b2c3d");
    expect(seal(key, plaintext, ctx, { nonce })).toBe("v1.0a1b2c3d.CQkJCQkJCQkJCQkJ.gio7D7KpdJzoOQHLmKKO-Q4q5h7TPztaXrSn1XWz7kiyWMmO");
  });

  test("a fresh nonce each time", () => {
    expect(seal(key, plaintext, ctx)).not.toBe(seal(key, plaintext, ctx));
  });

  test.each([
    ["another row", { ...ctx, rowKey: "TOTP0002" }],
    ["another column", { ...ctx, column: "other" }],
    ["another table", { ...ctx, table: "radius_clients" }],
    ["a row key that only differs in case", { ...ctx, rowKey: "totp0001" }],
  ])("AD binding: opening at %s fails as corrupt", (_name, moved) => {
    const sealed = seal(key, plaintext, ctx);
    expect(codeOf(() => openSealed(lookup(key), sealed, moved))).toBe("corrupt");
  });

  test("relabelling the key ID fails (the ID is in the AD)", () => {
    const sealed = seal(key, plaintext, ctx);
    const relabelled = sealed.replace(`.${key.id}.`, ".ffffffff.");
    const both = (id: string) => (id === key.id || id === "ffffffff" ? key.key : undefined);
    expect(codeOf(() => openSealed(both, relabelled, ctx))).toBe("corrupt");
  });

  test("a wrong key with the same ID fails as corrupt", () => {
    expect(codeOf(() => openSealed(lookup(other), seal(key, plaintext, ctx), ctx))).toBe("corrupt");
  });

  test("an unknown key ID is key_mismatch", () => {
    expect(codeOf(() => openSealed(() => undefined, seal(key, plaintext, ctx), ctx))).toBe("key_mismatch");
  });

  const flip = (b64: string, index: number) => {
    const bytes = Buffer.from(b64, "base64url");
    bytes[index]! ^= 1;
    return bytes.toString("base64url");
  };
  test.each([
    ["nonce", 2, 0],
    ["first ciphertext byte", 3, 0],
    ["last tag byte", 3, -1],
  ])("tampering with the %s is detected", (_name, part, index) => {
    const parts = seal(key, plaintext, ctx).split(".");
    const len = Buffer.from(parts[part]!, "base64url").length;
    parts[part] = flip(parts[part]!, index < 0 ? len + index : index);
    expect(codeOf(() => openSealed(lookup(key), parts.join("."), ctx))).toBe("corrupt");
  });

  test.each([
    ["empty", ""],
    ["plaintext", "JBSWY3DPEHPK3PXP"],
    ["other version", seal(key, plaintext, ctx).replace(/^v1/, "v2")],
    ["truncated tag", seal(key, plaintext, ctx).slice(0, 30)],
    ["extra part", seal(key, plaintext, ctx) + ".x"],
  ])("malformed stored value (%s) is corrupt", (_name, value) => {
    expect(codeOf(() => openSealed(lookup(key), value, ctx))).toBe("corrupt");
  });

  test("error messages carry neither key nor plaintext", () => {
    try {
      openSealed(lookup(other), seal(key, plaintext, ctx), ctx);
      throw new Error("unreachable");
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).not.toContain("12345678901234567890");
      expect(msg).not.toContain(Buffer.from(key.key).toString("base64"));
      expect(msg).not.toContain(Buffer.from(other.key).toString("hex"));
    }
  });

  test("misuse throws TypeError", () => {
    expect(() => seal({ id: key.id, key: new Uint8Array(16) }, plaintext, ctx)).toThrow(TypeError);
    expect(() => seal({ id: "NOT-HEX", key: key.key }, plaintext, ctx)).toThrow(TypeError);
    expect(() => seal(key, plaintext, ctx, { nonce: new Uint8Array(8) })).toThrow(TypeError);
  });
});
