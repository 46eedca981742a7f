// The sealer every back-end shares: seals with the keyring's current key, opens with any key it
// holds, and re-reads the key file when a value names a key ID it does not know.

import { log } from "../audit/log.ts";
import type { Keyring } from "./keyring.ts";
import { openSealed, seal, type SealContext } from "./seal.ts";
import { StoreError } from "./types.ts";

/** How often a process may re-read the key file after meeting an unknown key ID. */
const RELOAD_INTERVAL_MS = 1000;
/** Opened values kept so the hot path (tokens.activeForUser per request) skips AES-GCM; cleared when full. */
const OPEN_CACHE_MAX = 4096;

/** Seals with the keyring's current key and opens with any key it holds, re-reading the key file once
 * when a value names a key ID it does not know (another process rotated the key). */
export class Sealer {
  private lastReload = 0;
  private checkedId: string | undefined;
  /** Keyed by location and sealed text, so a ciphertext moved to another row still misses and fails. */
  private readonly cache = new Map<string, Uint8Array>();

  constructor(
    readonly keyring: Keyring,
    private readonly ensureCheckRow: (keyId: string) => void,
    private readonly now: () => number,
  ) {}

  /** Seals `plaintext` at `ctx` under the current key. */
  seal(plaintext: Uint8Array, ctx: SealContext): string {
    const current = this.keyring.current;
    if (current.id !== this.checkedId) {
      this.ensureCheckRow(current.id);
      this.checkedId = current.id;
    }
    return seal(current, plaintext, ctx);
  }

  /** Opens a sealed value. Throws StoreError("key_mismatch" | "corrupt") like openSealed. */
  open(sealed: string, ctx: SealContext): Uint8Array {
    const cacheKey = `${ctx.table}:${ctx.column}:${ctx.rowKey}\n${sealed}`;
    const hit = this.cache.get(cacheKey);
    if (hit) return hit.slice();
    const opened = this.openUncached(sealed, ctx);
    if (this.cache.size >= OPEN_CACHE_MAX) this.cache.clear();
    this.cache.set(cacheKey, opened.slice());
    return opened;
  }

  private openUncached(sealed: string, ctx: SealContext): Uint8Array {
    try {
      return openSealed((id) => this.keyring.get(id), sealed, ctx);
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== "key_mismatch") throw err;
      const now = this.now();
      if (now - this.lastReload < RELOAD_INTERVAL_MS) throw err;
      this.lastReload = now;
      if (!this.keyring.reload()) throw err;
      log("info", "store.key.reloaded", { keyIds: this.keyring.ids() });
      return openSealed((id) => this.keyring.get(id), sealed, ctx);
    }
  }

  /** Marks the current key as already having its check row (set at open). */
  markChecked(keyId: string): void {
    this.checkedId = keyId;
  }

  /** Forgets which key has its check row: the next seal writes the current key's row again. */
  forgetChecked(): void {
    this.checkedId = undefined;
  }
}
