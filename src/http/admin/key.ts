// Admin API: the sealing key (rotate), as `portcullis key rotate` does. Root only.

import * as v from "valibot";
import { rotateSealingKey } from "../../admin/key.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";

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
    async (c) => c.json(await rotateSealingKey(adminContextOf(deps, c))),
  );
}
