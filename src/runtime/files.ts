// File helpers for the store: private directories, exclusive 0600 creation, atomic replace, and
// handing root-created files to the owner of the data directory.

import * as fs from "node:fs";
import * as path from "node:path";

/** Creates `dir` (and parents) with mode 0700 when missing. Throws the fs error otherwise. */
export function ensurePrivateDirectory(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Creates `file` with O_CREAT|O_EXCL and mode 0600 and writes `data` durably (fsync).
 * Throws an fs error with code "EEXIST" when the file already exists: it is never overwritten.
 */
export function createExclusive(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, "wx", 0o600);
  try {
    // The umask can only remove bits, but be explicit in case the file system ignores the mode.
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `file` atomically with `data`: writes `file.tmp-<pid>` exclusively with mode 0600,
 * fsyncs it and renames it over the original, then fsyncs the directory. A crash leaves either the
 * old or the new content. Throws the fs error on failure (the temporary file is removed).
 */
export function replaceAtomically(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    createExclusive(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(file));
}

function syncDirectory(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  }
}

/** The owner of a path, or undefined when it does not exist. */
export function ownerOf(file: string): { uid: number; gid: number } | undefined {
  try {
    const st = fs.statSync(file);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

/**
 * When this process runs as root and `dir` belongs to another user (the service account), chowns
 * each existing file in `files` to the directory's owner, so the service can still open what an
 * administrator's root shell created. Missing files are skipped. Returns how many were changed.
 * Throws the fs error when a chown fails.
 */
export function chownToDirectoryOwner(dir: string, files: readonly string[]): number {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return 0;
  const owner = ownerOf(dir);
  if (!owner || owner.uid === 0) return 0;
  let changed = 0;
  for (const file of files) {
    const current = ownerOf(file);
    if (!current || (current.uid === owner.uid && current.gid === owner.gid)) continue;
    fs.chownSync(file, owner.uid, owner.gid);
    changed++;
  }
  return changed;
}
