// Child process for uncaught.test.ts: installs serve's last-resort handlers, then lets an error
// escape as argv[2] says ("exception" from a timer, "rejections" from three promises), and after
// them logs test.counted with what the handlers counted. Not a test file itself.

import { log } from "../../../src/audit/log.ts";
import { reportUncaught } from "../../../src/cli/uncaught.ts";

const counted: string[] = [];
reportUncaught({ count: (origin) => void counted.push(origin) });
if (process.argv[2] === "exception") {
  setTimeout(() => {
    throw new TypeError("a bug that quotes the secret s3cret-value");
  }, 1);
} else {
  for (let i = 0; i < 3; i++) {
    void Promise.resolve().then(() => {
      throw new RangeError("a bug that quotes the secret s3cret-value");
    });
  }
}
setTimeout(() => {
  log("info", "test.counted", { counted });
  process.exit(0);
}, 300);
