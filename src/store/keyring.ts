// The sealing keyring: where the AES-256 keys come from, the key file format, and key rotation.
//
// Sources, first match wins:
//   (a) systemd credential  $CREDENTIALS_DIRECTORY/portcullis.key  (LoadCredentialEncrypted=)
//   (b) environment         PORTCULLIS_KEY = 32 bytes as base64 or hex
//   (c) key file            <data_dir>/portcullis.key, or the configured path
//
// Key file format (also accepted in the credential): one key per line, `<keyId> <base64 key>`;
// blank lines and `#` comments are ignored; the LAST line is the current key that seals new
// values, earlier ones still open old values. A credential or PORTCULLIS_KEY may instead hold one
// bare key, whose ID is then derived from the key (a truncated SHA-256, which reveals nothing).
// Key material never reaches a log line or an error message.

import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createExclusive, replaceAtomically } from "../runtime/files.ts";
import type { SealKey } from "./seal.ts";

export type KeySourceKind = "credential" | "env" | "file";

/** Where the keys came from; `path` for credential and file sources. */
export interface KeySource {
  kind: KeySourceKind;
  path?: string;
}

export const CREDENTIAL_NAME = "portcullis.key";
export const KEY_ENV = "PORTCULLIS_KEY";

const HEADER =
  "# Portcullis secret-sealing keys: one `<keyId> <base64 32-byte key>` per line.\n" +
  "# The last line is the current key; earlier lines still decrypt older values.\n" +
  "# Back this file up apart from the database: without it the sealed secrets are lost.\n";

/** A set of keys and the current one. Keys are looked up by ID on every decryption. */
export class Keyring {
  private keys: Map<string, Uint8Array>;
  private currentId: string;

  /** Throws TypeError when `keys` is empty. */
  constructor(
    keys: readonly SealKey[],
    readonly source: KeySource,
  ) {
    if (keys.length === 0) throw new TypeError("a keyring needs at least one key");
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    this.currentId = keys[keys.length - 1]!.id;
  }

  /** The key that seals new values. */
  get current(): SealKey {
    return { id: this.currentId, key: this.keys.get(this.currentId)! };
  }

  /** The key with this ID, if held. */
  get(id: string): Uint8Array | undefined {
    return this.keys.get(id);
  }

  /** All key IDs, oldest first, current last. */
  ids(): string[] {
    return [...this.keys.keys()];
  }

  /**
   * Re-reads a file or credential source (another process may have rotated the key). Returns true
   * when the key set changed. Environment keys cannot change. Throws TypeError for a malformed file.
   */
  reload(): boolean {
    if (!this.source.path) return false;
    let text: string;
    try {
      text = fs.readFileSync(this.source.path, "utf8");
    } catch {
      return false;
    }
    const keys = parseKeyText(text, this.source.path);
    const before = this.ids().join(",") + "|" + this.currentId;
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    this.currentId = keys[keys.length - 1]!.id;
    return before !== this.ids().join(",") + "|" + this.currentId;
  }

  /** @internal used by rotation once the new key is on disk. */
  adopt(key: SealKey): void {
    this.keys.set(key.id, key.key);
    this.currentId = key.id;
  }
}

/** A fresh 8-hex-digit key ID. */
export function generateKeyId(): string {
  return randomBytes(4).toString("hex");
}

/** The ID of a bare key (credential or environment): the first 4 bytes of a domain-separated SHA-256. */
export function deriveKeyId(key: Uint8Array): string {
  return createHash("sha256").update("portcullis:key-id:").update(key).digest().subarray(0, 4).toString("hex");
}

/** Decodes 32 bytes given as 64 hex digits or base64/base64url; undefined for anything else. */
export function decodeKey(text: string): Uint8Array | undefined {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return new Uint8Array(Buffer.from(s, "hex"));
  if (!/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(s)) return undefined;
  const bytes = Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64");
  return bytes.length === 32 ? new Uint8Array(bytes) : undefined;
}

/**
 * Parses key-file text (or a single bare key). `where` names the source in error messages.
 * Throws TypeError naming the line when the text is malformed or holds no key.
 */
export function parseKeyText(text: string, where: string): SealKey[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const content = lines.map((l, i) => ({ l, n: i + 1 })).filter(({ l }) => l !== "" && !l.startsWith("#"));
  if (content.length === 1 && !/\s/.test(content[0]!.l)) {
    const key = decodeKey(content[0]!.l);
    if (!key) throw new TypeError(`${where} must hold a 32-byte key in base64 or hex, or lines of '<keyId> <base64 key>'`);
    return [{ id: deriveKeyId(key), key }];
  }
  const keys: SealKey[] = [];
  const seen = new Set<string>();
  for (const { l, n } of content) {
    const m = /^([0-9a-f]{4,32})\s+(\S+)$/.exec(l);
    const key = m ? decodeKey(m[2]!) : undefined;
    if (!m || !key) throw new TypeError(`${where} line ${n} is malformed: expected '<keyId> <base64 32-byte key>'`);
    if (seen.has(m[1]!)) throw new TypeError(`${where} line ${n} repeats key ID ${m[1]}`);
    seen.add(m[1]!);
    keys.push({ id: m[1]!, key });
  }
  if (keys.length === 0) throw new TypeError(`${where} holds no key`);
  return keys;
}

/** Options for finding the keyring; `env` defaults to process.env. */
export interface KeyringOptions {
  keyFile: string;
  env?: Record<string, string | undefined>;
}

/**
 * Loads the keyring from the first source that exists (credential, environment, key file), or
 * returns undefined when none does. Throws TypeError when the source that exists is malformed.
 */
export function loadKeyring({ keyFile, env = process.env }: KeyringOptions): Keyring | undefined {
  const credDir = env.CREDENTIALS_DIRECTORY;
  if (credDir) {
    const credPath = path.join(credDir, CREDENTIAL_NAME);
    const text = readIfExists(credPath);
    if (text !== undefined) return new Keyring(parseKeyText(text, `credential ${CREDENTIAL_NAME}`), { kind: "credential", path: credPath });
  }
  const fromEnv = env[KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    return new Keyring(parseKeyText(fromEnv, `$${KEY_ENV}`), { kind: "env" });
  }
  const text = readIfExists(keyFile);
  if (text !== undefined) return new Keyring(parseKeyText(text, `key file ${keyFile}`), { kind: "file", path: keyFile });
  return undefined;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Creates a new key file with O_EXCL and mode 0600 holding one fresh key. Throws the fs error with
 * code "EEXIST" when the file exists (it is never overwritten).
 */
export function createKeyFile(keyFile: string): Keyring {
  const key: SealKey = { id: generateKeyId(), key: new Uint8Array(randomBytes(32)) };
  createExclusive(keyFile, HEADER + formatKeyLine(key));
  return new Keyring([key], { kind: "file", path: keyFile });
}

/**
 * Appends a fresh key to a file-backed keyring (atomic replace, mode 0600) and makes it current.
 * Throws TypeError when the keyring is not file-backed (environment or credential), or the fs error.
 */
export function appendNewKey(keyring: Keyring): SealKey {
  const file = keyring.source.kind === "file" ? keyring.source.path : undefined;
  if (!file) throw new TypeError(`key rotation writes the key file, but the key comes from ${describeSource(keyring.source)}`);
  keyring.reload();
  let key: SealKey;
  do key = { id: generateKeyId(), key: new Uint8Array(randomBytes(32)) };
  while (keyring.get(key.id));
  const existing = fs.readFileSync(file, "utf8");
  replaceAtomically(file, existing + (existing.endsWith("\n") || existing === "" ? "" : "\n") + formatKeyLine(key));
  keyring.adopt(key);
  return key;
}

/** A human description of a key source for messages ("$PORTCULLIS_KEY", "key file /x"). */
export function describeSource(source: KeySource): string {
  switch (source.kind) {
    case "env":
      return `$${KEY_ENV}`;
    case "credential":
      return `systemd credential ${CREDENTIAL_NAME}`;
    case "file":
      return `key file ${source.path}`;
  }
}

function formatKeyLine(key: SealKey): string {
  return `${key.id} ${Buffer.from(key.key).toString("base64")}\n`;
}
