// Child process for approvals.test.ts: opens the store and, for each round, races the other children
// to create the pending approval of one user (createOrJoin), printing what it got as JSON. Not a test file itself.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { setLogSink } from "../../../../src/audit/log.ts";
import { openSqliteStore } from "../../../../src/store/sqlite/store.ts";

setLogSink(() => {});
const [dir, n, rounds] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a))) as [string, number, number];
const store = await openSqliteStore({ path: `${dir}/portcullis.db`, dataDir: dir, env: {} });
// Start barrier: report ready, then wait for the parent's "go" so all children really race.
fs.writeFileSync(`${dir}/ready-${process.pid}`, "");
while (!fs.existsSync(`${dir}/go`)) await Bun.sleep(1);
const out: Array<{ created: boolean; id: string }> = [];
for (let r = 0; r < rounds; r++) {
  const id = `p${n}-r${r}`;
  const result = await store.approvals.createOrJoin(
    {
      id,
      kind: "radius",
      user: `user${r}`,
      client: "vpn",
      source: null,
      msisdn: null,
      apiKeyId: null,
      state: "pending",
      channel: null,
      linkHash: createHash("sha256").update(id).digest("hex"),
      texts: "{}",
      numberMatch: null,
      createdAt: 0,
      expiresAt: Number.MAX_SAFE_INTEGER,
      answeredAt: null,
    },
    1,
  );
  out.push({ created: result.created, id: result.approval.id });
}
await store.close();
process.stdout.write(JSON.stringify(out));
