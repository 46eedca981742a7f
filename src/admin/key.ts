// Admin operation: rotate the sealing key (`portcullis key rotate`, POST /api/admin/v1/key/rotate).

import { rotateKey } from "../store/open.ts";
import { StoreError } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError } from "./errors.ts";

/**
 * Makes a new sealing key in the key file and re-encrypts every OTP seed and RADIUS secret under it
 * (nothing changes unless all of it succeeds); records admin.key_rotated with the new key's ID,
 * never the key. Throws AdminError("conflict") when the key does not come from a key file ($PORTCULLIS_KEY
 * or a systemd credential): its message is the store's (it names the key source), the exposed text a fixed one.
 */
export async function rotateSealingKey(ctx: AdminContext): Promise<{ keyId: string; resealed: number }> {
  try {
    return await ctx.audit.change(
      () => rotateKey(ctx.store),
      (r) => ({ type: "admin.key_rotated", keyId: r.keyId, resealed: r.resealed }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "unavailable") {
      throw new AdminError("conflict", e.message, { expose: "the sealing key does not come from a key file ($PORTCULLIS_KEY or a systemd credential): add the new key there; nothing changed" });
    }
    throw e;
  }
}
