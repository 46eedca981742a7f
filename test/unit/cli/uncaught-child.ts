// Child process for uncaught.test.ts: installs serve's last-resort handlers, then lets an error
// escape as argv[2] says ("exception" from a timer, "rejection" from a promise). Not a test file itself.

import { exitOnUncaught } from "../../../src/cli/uncaught.ts";

exitOnUncaught();
if (process.argv[2] === "exception") {
  setTimeout(() => {
    throw new TypeError("a bug that quotes the secret s3cret-value");
  }, 1);
} else {
  void Promise.resolve().then(() => {
    throw new RangeError("a bug that quotes the secret s3cret-value");
  });
}
setTimeout(() => process.stdout.write("still running\n"), 2000);
