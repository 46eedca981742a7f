// Local password hashing: argon2id via Bun.password, bcrypt/argon2id verification, bounded concurrency.
//
// Outside Bun (Deno) the same PHC strings are made and checked by hash-wasm, a WebAssembly build of
// the reference argon2 and of OpenBSD bcrypt, loaded on first use: a hash made on one runtime
// verifies on the other (test/unit/runtime/password.test.ts pins one hash of each). Unlike
// Bun.password, which hashes on a thread pool, hash-wasm runs on the calling thread: under Deno each
// argon2id hash or verification holds the event loop for its whole duration.
//
// Parameters: argon2id with m = 19456 KiB (19 MiB), t = 2, p = 1 is the OWASP Password Storage
// Cheat Sheet's first recommended configuration (equivalent in cost to RFC 9106 §4's guidance for
// memory-constrained servers). It costs ~30 ms on one core of a small VM. With the semaphore below
// at most `limit` hashes run at once, so a burst of logins uses at most limit × 19 MiB and queues
// instead of exhausting memory or starving the RADIUS event loop's thread pool.

import { availableParallelism } from "node:os";

const ARGON2_OPTIONS = { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 } as const;

const ARGON2ID_PHC = /^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;
/** bcrypt modular-crypt string: $2a$/$2b$/$2y$, two-digit cost, 22 salt + 31 hash characters. */
const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
/** bcrypt only reads the first 72 bytes of a password (see verifyPassword). */
const BCRYPT_MAX_BYTES = 72;

/** A counting semaphore: at most `limit` of the functions passed to run() are in flight at once. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(public limit: number) {}

  /**
   * Runs `fn` when a slot is free. With `maxWaiting`, a caller that would queue behind that many
   * others is refused at once with PasswordOverloadedError (load shedding).
   */
  async run<T>(fn: () => Promise<T>, { maxWaiting = Infinity }: { maxWaiting?: number } = {}): Promise<T> {
    if (this.active >= this.limit && this.waiting.length >= maxWaiting) throw new PasswordOverloadedError();
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter; `active` stays the same.
      if (next) next();
      else this.active--;
    }
  }

  /** Wakes waiters after a raised limit. */
  drain(): void {
    while (this.active < this.limit && this.waiting.length > 0) {
      this.active++;
      this.waiting.shift()!();
    }
  }
}

/**
 * Thrown instead of queueing a verification behind too many others: under a flood the request is
 * better dropped (the NAS retries or fails over) than answered after the NAS gave up.
 */
export class PasswordOverloadedError extends Error {
  readonly code = "overloaded";
  constructor() {
    super("password verification queue is full");
    this.name = "PasswordOverloadedError";
  }
}

/** Verifications allowed to wait per concurrent slot (~64 × 30 ms ≈ 2 s of work, under a NAS's timeout). */
const WAITING_PER_SLOT = 64;

const semaphore = new Semaphore(Math.max(1, availableParallelism()));

/**
 * Sets how many hashes or verifications may run at once (default: the number of CPUs).
 * Throws TypeError unless n is a positive integer.
 */
export function setPasswordConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new TypeError("password concurrency must be a positive integer");
  semaphore.limit = n;
  semaphore.drain();
}

/** The current concurrency limit. */
export function passwordConcurrency(): number {
  return semaphore.limit;
}

/** True when `s` is already an argon2id PHC string or a bcrypt hash, i.e. importable as is. */
export function isPrehashed(s: string): boolean {
  return ARGON2ID_PHC.test(s) || BCRYPT.test(s);
}

/** Hashes a password with argon2id (PHC string). Rejects only on an internal hashing failure. */
export function hashPassword(plain: string): Promise<string> {
  return semaphore.run(() => (typeof Bun !== "undefined" ? Bun.password.hash(plain, ARGON2_OPTIONS) : wasmHash(plain)));
}

/** Salt length for hashes made outside Bun, in octets (RFC 9106 §3.1 recommends 16; Bun uses 32; both verify everywhere). */
const WASM_SALT_OCTETS = 16;
/** Tag length in octets, as Bun.password makes it. */
const ARGON2_TAG_OCTETS = 32;

type HashWasm = typeof import("hash-wasm");
let hashWasm: Promise<HashWasm> | undefined;
const loadHashWasm = (): Promise<HashWasm> => (hashWasm ??= import("hash-wasm"));

async function wasmHash(plain: string): Promise<string> {
  const { argon2id } = await loadHashWasm();
  return argon2id({
    password: plain,
    salt: crypto.getRandomValues(new Uint8Array(WASM_SALT_OCTETS)),
    parallelism: 1,
    iterations: ARGON2_OPTIONS.timeCost,
    memorySize: ARGON2_OPTIONS.memoryCost,
    hashLength: ARGON2_TAG_OCTETS,
    outputType: "encoded",
  });
}

async function wasmVerify(password: string | Uint8Array, hash: string): Promise<boolean> {
  const { argon2Verify, bcryptVerify } = await loadHashWasm();
  return BCRYPT.test(hash) ? bcryptVerify({ password, hash }) : argon2Verify({ password, hash });
}

/**
 * Verifies a password against an argon2id or bcrypt ($2a$/$2b$/$2y$) hash. Returns false for a
 * wrong password and for a malformed or unsupported hash. Rejects only with
 * PasswordOverloadedError, when too many verifications are already waiting.
 *
 * bcrypt hashes only come from imports made by other systems, which (like OpenBSD bcrypt) ignore
 * bytes after the 72nd; Bun would instead pre-hash a longer password with SHA-512, so we truncate
 * to keep imported hashes working.
 */
export async function verifyPassword(plain: string, hash: string): Promise<boolean> {
  let password: string | Uint8Array = plain;
  if (BCRYPT.test(hash)) {
    const bytes = new TextEncoder().encode(plain);
    if (bytes.length > BCRYPT_MAX_BYTES) password = bytes.subarray(0, BCRYPT_MAX_BYTES);
  } else if (!ARGON2ID_PHC.test(hash)) {
    return false;
  }
  // Rejects with PasswordOverloadedError (not a wrong password) when the queue is full.
  const verify = typeof Bun !== "undefined" ? () => Bun.password.verify(password, hash) : () => wasmVerify(password, hash);
  return semaphore.run(() => verify().catch(() => false), {
    maxWaiting: semaphore.limit * WAITING_PER_SLOT,
  });
}

let dummyHash: Promise<string> | undefined;

/** Computes the dummy hash now (at start-up) so the first unknown user does not pay for it. */
export async function warmDummyHash(): Promise<void> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  await dummyHash;
}

/**
 * Costs what a real verification costs, for unknown users and users without a local password, so
 * response timing does not tell whether a user exists. Always resolves to false.
 */
export async function dummyVerify(plain: string): Promise<false> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  await verifyPassword(plain, await dummyHash);
  return false;
}
