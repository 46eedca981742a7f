// Child process for processes.test.ts: opens the store and races for TOTP steps and challenges,
// printing how many it won as JSON. Not a test file itself.

import * as fs from "node:fs";
import { setLogSink } from "../../../../src/audit/log.ts";
import { openSqliteStore } from "../../../../src/store/sqlite/store.ts";

setLogSink(() => {});
const [dir, tokenId, steps, challenges] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a))) as [string, number, number, number];
const store = await openSqliteStore({ path: `${dir}/portcullis.db`, dataDir: dir, env: {} });
// Start barrier: report ready, then wait for the parent's "go" so all children really race.
fs.writeFileSync(`${dir}/ready-${process.pid}`, "");
while (!fs.existsSync(`${dir}/go`)) await Bun.sleep(1);
let totp = 0;
let consumed = 0;
for (let step = 0; step < steps; step++) {
  if (await store.tokens.advanceTOTP(tokenId, step, 0)) totp++;
  if (step < challenges && (await store.challenges.consume(`c${step}`, 0))) consumed++;
}
await store.close();
process.stdout.write(JSON.stringify({ totp, consumed }));
