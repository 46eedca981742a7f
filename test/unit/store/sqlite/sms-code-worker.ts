// Child process for sms-codes.test.ts: opens the store and races the other children to consume each
// SMS code once, printing how many it won. Not a test file itself.

import * as fs from "node:fs";
import { setLogSink } from "../../../../src/audit/log.ts";
import { openSqliteStore } from "../../../../src/store/sqlite/store.ts";

setLogSink(() => {});
const [dir, codesArg, hash] = process.argv.slice(2) as [string, string, string];
const store = await openSqliteStore({ path: `${dir}/portcullis.db`, dataDir: dir, env: {} });
fs.writeFileSync(`${dir}/ready-${process.pid}`, "");
while (!fs.existsSync(`${dir}/go`)) await Bun.sleep(1);
let won = 0;
for (let i = 0; i < Number(codesArg); i++) if (await store.smsCodes.consume(`st${i}`, hash, 1)) won++;
await store.close();
process.stdout.write(JSON.stringify(won));
