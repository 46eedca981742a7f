// Test helpers for the store: temporary data directories and sample records.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setLogSink } from "../../../src/audit/log.ts";
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from "../../../src/store/sqlite/store.ts";
import type { NewRadiusClient, NewToken, NewUser } from "../../../src/store/types.ts";

setLogSink(() => {});

/** A fresh directory under the OS temp dir, removed by cleanup(). */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-store-"));
}

export function cleanup(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Opens a store in `dir` with an empty environment (no $PORTCULLIS_KEY leaking in from the shell). */
export function openIn(dir: string, options: Partial<SqliteStoreOptions> = {}): Promise<SqliteStore> {
  return openSqliteStore({ path: path.join(dir, "portcullis.db"), dataDir: dir, env: {}, ...options });
}

export function newUser(username: string, patch: Partial<NewUser> = {}): NewUser {
  return { username, passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null, ...patch };
}

export function newToken(serial: string, patch: Partial<NewToken> = {}): NewToken {
  return {
    serial,
    userId: null,
    kind: "totp",
    secret: new Uint8Array(20).map((_, i) => i + serial.length),
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    state: "active",
    ...patch,
  };
}

/** A client with an address of its own, derived from its name: the store refuses two clients with one network. */
export function newClient(name: string, patch: Partial<NewRadiusClient> = {}): NewRadiusClient {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return {
    name,
    address: `10.${(h >>> 16) & 0xff}.${(h >>> 8) & 0xff}.${(h & 0xfe) + 1}/32`,
    secret: `shared-secret-of-${name}`,
    firstFactor: "password",
    otpMode: "challenge",
    requireMessageAuthenticator: true,
    allowPasswordOnly: false,
    directories: null,
    ...patch,
  };
}
