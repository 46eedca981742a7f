// Admin API: the sealing key (rotate), as `portcullis key rotate` does. Root only.

import * as v from "valibot";
import { rotateKey } from "../../store/open.ts";
import { StoreError } from "../../store/types.ts";
import { fail, type AdminRouter } from "./route.ts";

const TAG = "key";

const rotated = v.object({
  keyId: v.pipe(v.string(), v.description("ID of the new current sealing key (never the key itself)")),
  resealed: v.pipe(v.number(), v.description("how many OTP seeds and RADIUS shared secrets were re-encrypted under it")),
});

/** Registers /key routes. */
export function keyRoutes(r: AdminRouter): void {
  const { deps } = r;
  r.route(
    {
      method: "post",
      path: "/key/rotate",
      summary: "Rotate the sealing key: a new key in the key file, every OTP seed and RADIUS secret re-encrypted under it (root only)",
      tag: TAG,
      minRole: "root",
      responses: { 200: { description: "The new key ID and how many secrets were re-encrypted", schema: rotated } },
      errors: [409],
    },
    async (c) => {
      let result: { keyId: string; resealed: number };
      try {
        result = await rotateKey(deps.store);
      } catch (e) {
        // The store's message names the key source (an environment variable, a credential or a path);
        // the answer keeps to a fixed explanation.
        if (e instanceof StoreError && e.code === "unavailable") {
          return fail(c, 409, "the sealing key does not come from a key file ($PORTCULLIS_KEY or a systemd credential): add the new key there; nothing changed");
        }
        throw e;
      }
      deps.audit({ type: "admin.key_rotated", keyId: result.keyId, resealed: result.resealed, by: c.get("apiKey").name });
      return c.json(result);
    },
  );
}
