// `bun:test` for Deno: the part of its API the unit tests use (describe/test/each/skipIf, the hooks,
// expect with its matchers and asymmetric matchers), on top of Deno.test. deno.json maps the
// `bun:test` specifier here, so the same test files run under `bun test` and `deno test`.
//
// Semantics follow bun:test where the tests depend on them:
// - describe blocks only name and group: each test becomes one Deno.test named "outer > inner > test".
// - beforeAll runs before the group's first test, afterAll after its last; beforeEach/afterEach
//   wrap every test, outer hooks first (after-hooks inner first).
// - toEqual ignores properties whose value is undefined and the prototype of plain objects
//   (node:sqlite rows have a null prototype); toStrictEqual is not provided.
// Deno's resource and op sanitizers are off: bun:test has none, and the tests were not written for them.

declare const Deno: {
  test(options: { name: string; fn: () => Promise<void>; ignore?: boolean; sanitizeOps?: boolean; sanitizeResources?: boolean; sanitizeExit?: boolean }): void;
  inspect(value: unknown, options?: { depth?: number; colors?: boolean }): string;
};

type Fn = () => unknown;
type Hook = { fn: Fn };

interface Suite {
  name: string;
  parent: Suite | undefined;
  beforeAll: Hook[];
  afterAll: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
  /** Tests registered in this suite or below, and how many of them have run (afterAll runs after the last). */
  total: number;
  ran: number;
  started: boolean;
  skipped: boolean;
}

/**
 * One root suite per test file, as bun:test scopes a file's top-level hooks to that file: deno test
 * loads every file into one process, where this module is shared.
 */
const roots = new Map<string, Suite>();
/** The describe block being evaluated, or undefined at a file's top level. */
let current: Suite | undefined;

/** The test file whose top level is running: the first *.test.ts frame of the stack (a helper module may be in between). */
function callerFile(): string {
  const frames = [...(new Error().stack ?? "").matchAll(/((?:file|https?):\/\/[^\s)]+?):\d+:\d+/g)].map((m) => m[1]!);
  const own = import.meta.url;
  return frames.find((f) => f !== own && f.endsWith(".test.ts")) ?? frames.find((f) => f !== own) ?? "";
}

function scope(): Suite {
  if (current) return current;
  const file = callerFile();
  let root = roots.get(file);
  if (!root) roots.set(file, (root = newSuite("", undefined, false)));
  return root;
}

function newSuite(name: string, parent: Suite | undefined, skipped: boolean): Suite {
  return { name, parent, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], total: 0, ran: 0, started: false, skipped };
}

function chain(suite: Suite): Suite[] {
  const out: Suite[] = [];
  for (let s: Suite | undefined = suite; s; s = s.parent) out.unshift(s);
  return out;
}

function fullName(suite: Suite, name: string): string {
  return [...chain(suite).map((s) => s.name).filter(Boolean), name].join(" > ");
}

/** Runs a test or hook function, with or without a done callback. */
async function call(fn: (...args: unknown[]) => unknown, ...args: unknown[]): Promise<void> {
  await fn(...args);
}

function register(name: string, fn: Fn | undefined, { skip = false } = {}): void {
  const suite = scope();
  const suites = chain(suite);
  const ignored = skip || fn === undefined || suites.some((s) => s.skipped);
  if (!ignored) for (const s of suites) s.total++;
  Deno.test({
    name: fullName(suite, name),
    ignore: ignored,
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    fn: async () => {
      for (const s of suites) {
        if (!s.started) {
          s.started = true;
          for (const h of s.beforeAll) await call(h.fn);
        }
      }
      let failure: unknown;
      try {
        for (const s of suites) for (const h of s.beforeEach) await call(h.fn);
        await call(fn!);
      } catch (err) {
        failure = err;
      }
      for (const s of [...suites].reverse()) {
        for (const h of s.afterEach) {
          try {
            await call(h.fn);
          } catch (err) {
            failure ??= err;
          }
        }
      }
      for (const s of [...suites].reverse()) {
        s.ran++;
        if (s.ran === s.total) {
          for (const h of s.afterAll) {
            try {
              await call(h.fn);
            } catch (err) {
              failure ??= err;
            }
          }
        }
      }
      if (failure !== undefined) throw failure;
    },
  });
}

/** bun:test's printf-style names: %s %d %i %p %o %j %#, %% and $name for object rows. */
function formatName(template: string, row: unknown, index: number): string {
  const args = Array.isArray(row) ? [...row] : [row];
  let out = template.replace(/%([sdipfoj#%])/g, (m, k: string) => {
    if (k === "%") return "%";
    if (k === "#") return String(index);
    if (args.length === 0) return m;
    const v = args.shift();
    if (k === "d" || k === "i" || k === "f") return String(Number(v));
    if (k === "s") return typeof v === "string" ? v : show(v);
    return show(v);
  });
  if (row && typeof row === "object" && !Array.isArray(row)) {
    out = out.replace(/\$([A-Za-z_][\w.]*)/g, (m, key: string) => {
      let v: unknown = row;
      for (const part of key.split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
      return v === undefined ? m : typeof v === "string" ? v : show(v);
    });
  }
  return out;
}

function show(v: unknown): string {
  try {
    return Deno.inspect(v, { depth: 4, colors: false });
  } catch {
    return String(v);
  }
}

function spread(row: unknown): unknown[] {
  return Array.isArray(row) ? row : [row];
}

type TestFn = ((name: string, fn?: (...args: any[]) => unknown, timeout?: number) => void) & {
  skip(name: string, fn?: Fn, timeout?: number): void;
  todo(name: string, fn?: Fn): void;
  only(name: string, fn?: Fn, timeout?: number): void;
  if(condition: boolean): (name: string, fn?: Fn, timeout?: number) => void;
  skipIf(condition: boolean): (name: string, fn?: Fn, timeout?: number) => void;
  each<T>(rows: readonly T[]): (name: string, fn: (...args: any[]) => unknown, timeout?: number) => void;
};

function makeTest(): TestFn {
  const t = ((name: string, fn?: Fn) => register(name, fn)) as TestFn;
  t.skip = (name: string, fn?: Fn) => register(name, fn, { skip: true });
  t.todo = (name: string) => register(name, undefined, { skip: true });
  t.only = (name: string, fn?: Fn) => register(name, fn);
  t.if = (condition: boolean) => (name: string, fn?: Fn) => register(name, fn, { skip: !condition });
  t.skipIf = (condition: boolean) => (name: string, fn?: Fn) => register(name, fn, { skip: condition });
  t.each = <T>(rows: readonly T[]) => (name: string, fn: (...args: any[]) => unknown) => {
    rows.forEach((row, i) => register(formatName(name, row, i), () => fn(...spread(row))));
  };
  return t;
}

export const test = makeTest();
export const it = test;

type DescribeFn = ((name: string, fn: () => void) => void) & {
  skip(name: string, fn: () => void): void;
  only(name: string, fn: () => void): void;
  if(condition: boolean): (name: string, fn: () => void) => void;
  skipIf(condition: boolean): (name: string, fn: () => void) => void;
  each<T>(rows: readonly T[]): (name: string, fn: (...args: any[]) => void) => void;
};

function group(name: string, fn: () => void, skipped = false): void {
  const parent = current;
  current = newSuite(name, scope(), skipped);
  try {
    const result = fn() as unknown;
    if (result instanceof Promise) throw new Error(`describe("${name}") got an async function; bun:test runs describe bodies synchronously`);
  } finally {
    current = parent;
  }
}

export const describe = ((name: string, fn: () => void) => group(name, fn)) as DescribeFn;
describe.skip = (name, fn) => group(name, fn, true);
describe.only = (name, fn) => group(name, fn);
describe.if = (condition) => (name, fn) => group(name, fn, !condition);
describe.skipIf = (condition) => (name, fn) => group(name, fn, condition);
describe.each = (rows) => (name, fn) => {
  rows.forEach((row, i) => group(formatName(name, row, i), () => fn(...spread(row))));
};

export function beforeAll(fn: Fn): void {
  scope().beforeAll.push({ fn });
}
export function afterAll(fn: Fn): void {
  scope().afterAll.push({ fn });
}
export function beforeEach(fn: Fn): void {
  scope().beforeEach.push({ fn });
}
export function afterEach(fn: Fn): void {
  scope().afterEach.push({ fn });
}

// ---------------------------------------------------------------------------------------------
// expect

abstract class Asymmetric {
  abstract matches(actual: unknown): boolean;
  abstract toString(): string;
}

class AnyOf extends Asymmetric {
  constructor(private readonly type: unknown) {
    super();
  }
  matches(a: unknown): boolean {
    const t = this.type;
    if (t === String) return typeof a === "string" || a instanceof String;
    if (t === Number) return typeof a === "number" || a instanceof Number;
    if (t === Boolean) return typeof a === "boolean" || a instanceof Boolean;
    if (t === BigInt) return typeof a === "bigint";
    if (t === Symbol) return typeof a === "symbol";
    if (t === Function) return typeof a === "function";
    if (t === Object) return a !== null && typeof a === "object";
    return typeof t === "function" && a instanceof (t as new (...args: never[]) => unknown);
  }
  toString(): string {
    return `Any<${(this.type as { name?: string }).name ?? "?"}>`;
  }
}
class Anything extends Asymmetric {
  matches(a: unknown): boolean {
    return a !== null && a !== undefined;
  }
  toString(): string {
    return "Anything";
  }
}
class StringContaining extends Asymmetric {
  constructor(private readonly s: string) {
    super();
  }
  matches(a: unknown): boolean {
    return typeof a === "string" && a.includes(this.s);
  }
  toString(): string {
    return `StringContaining ${JSON.stringify(this.s)}`;
  }
}
class StringMatching extends Asymmetric {
  constructor(private readonly re: RegExp | string) {
    super();
  }
  matches(a: unknown): boolean {
    return typeof a === "string" && (typeof this.re === "string" ? a.includes(this.re) : new RegExp(this.re.source, this.re.flags).test(a));
  }
  toString(): string {
    return `StringMatching ${String(this.re)}`;
  }
}
class ObjectContaining extends Asymmetric {
  constructor(private readonly o: Record<string, unknown>) {
    super();
  }
  matches(a: unknown): boolean {
    return a !== null && typeof a === "object" && subset(a, this.o);
  }
  toString(): string {
    return `ObjectContaining ${show(this.o)}`;
  }
}
class ArrayContaining extends Asymmetric {
  constructor(private readonly items: readonly unknown[]) {
    super();
  }
  matches(a: unknown): boolean {
    return Array.isArray(a) && this.items.every((x) => a.some((y) => equals(y, x)));
  }
  toString(): string {
    return `ArrayContaining ${show(this.items)}`;
  }
}

function isPlainish(o: object): boolean {
  const proto = Object.getPrototypeOf(o);
  return proto === Object.prototype || proto === null;
}

/** bun:test's toEqual: recursive, undefined-valued properties ignored, asymmetric matchers honoured. */
function equals(a: unknown, b: unknown, seen = new Map<object, object>()): boolean {
  if (b instanceof Asymmetric) return b.matches(a);
  if (a instanceof Asymmetric) return a.matches(b);
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (seen.get(a) === b) return true;
  seen.set(a, b);
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (a instanceof RegExp || b instanceof RegExp) return a instanceof RegExp && b instanceof RegExp && String(a) === String(b);
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b)) return false;
    // a Buffer equals a Uint8Array with the same octets, as in bun:test
    const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const bothOctets = (a instanceof Uint8Array && b instanceof Uint8Array) || a.constructor === b.constructor;
    if (!bothOctets || ua.length !== ub.length) return false;
    for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i], seen)) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !equals(v, b.get(k), seen)) return false;
    return true;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false;
    for (const v of a) if (![...b].some((w) => equals(v, w, seen))) return false;
    return true;
  }
  if (a instanceof Error && b instanceof Error && (a.message !== b.message || a.name !== b.name)) return false;
  if (!(isPlainish(a) && isPlainish(b)) && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!equals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], seen)) return false;
  }
  return true;
}

/** toMatchObject: every property of `expected` is in `actual`, recursively (arrays element by element). */
function subset(actual: unknown, expected: unknown): boolean {
  if (expected instanceof Asymmetric) return expected.matches(actual);
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => subset(actual[i], e));
  }
  if (expected !== null && typeof expected === "object" && !(expected instanceof Date) && !(expected instanceof RegExp) && !ArrayBuffer.isView(expected)) {
    if (actual === null || typeof actual !== "object") return false;
    for (const [k, v] of Object.entries(expected)) {
      if (!(k in (actual as object))) return false;
      if (!subset((actual as Record<string, unknown>)[k], v)) return false;
    }
    return true;
  }
  return equals(actual, expected);
}

class ExpectationError extends Error {
  override name = "AssertionError";
}

type Matchers = {
  not: Matchers;
  resolves: AsyncMatchers;
  rejects: AsyncMatchers;
  [name: string]: any;
};
type AsyncMatchers = { not: AsyncMatchers; [name: string]: any };

function thrownBy(fn: unknown): { threw: boolean; error: unknown } {
  if (typeof fn !== "function") throw new ExpectationError("expected a function");
  try {
    fn();
  } catch (error) {
    return { threw: true, error };
  }
  return { threw: false, error: undefined };
}

function errorMatches(error: unknown, expected: unknown): boolean {
  if (expected === undefined) return true;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof expected === "string") return message.includes(expected);
  if (expected instanceof RegExp) return expected.test(message);
  if (typeof expected === "function") return error instanceof (expected as new () => unknown);
  if (expected instanceof Error) return message === expected.message;
  if (expected instanceof Asymmetric) return expected.matches(error);
  if (expected && typeof expected === "object") return subset(error, expected);
  return false;
}

/** Each matcher returns [pass, description of what was expected]. */
const matchers: Record<string, (actual: any, ...args: any[]) => [boolean, string]> = {
  toBe: (a, e) => [Object.is(a, e), `to be ${show(e)}`],
  toEqual: (a, e) => [equals(a, e), `to equal ${show(e)}`],
  toStrictEqual: (a, e) => [equals(a, e), `to equal ${show(e)}`],
  toMatchObject: (a, e) => [a !== null && typeof a === "object" && subset(a, e), `to match object ${show(e)}`],
  toContain: (a, e) => [
    typeof a === "string" ? typeof e === "string" && a.includes(e) : a != null && typeof a[Symbol.iterator] === "function" && [...a].some((x) => Object.is(x, e)),
    `to contain ${show(e)}`,
  ],
  toContainEqual: (a, e) => [a != null && [...a].some((x: unknown) => equals(x, e)), `to contain an element equal to ${show(e)}`],
  toHaveLength: (a, n) => [a != null && a.length === n, `to have length ${n}`],
  toHaveProperty: (a, path: string | string[], ...value: unknown[]) => {
    const parts = Array.isArray(path) ? path : path.split(".");
    let v: unknown = a;
    for (const p of parts) {
      if (v === null || v === undefined || !(p in Object(v))) return [false, `to have property ${parts.join(".")}`];
      v = (v as Record<string, unknown>)[p];
    }
    return [value.length === 0 || equals(v, value[0]), `to have property ${parts.join(".")}${value.length ? ` = ${show(value[0])}` : ""}`];
  },
  toMatch: (a, e) => [typeof a === "string" && (typeof e === "string" ? a.includes(e) : e.test(a)), `to match ${String(e)}`],
  toStartWith: (a, e) => [typeof a === "string" && a.startsWith(e), `to start with ${show(e)}`],
  toEndWith: (a, e) => [typeof a === "string" && a.endsWith(e), `to end with ${show(e)}`],
  toBeUndefined: (a) => [a === undefined, "to be undefined"],
  toBeDefined: (a) => [a !== undefined, "to be defined"],
  toBeNull: (a) => [a === null, "to be null"],
  toBeNil: (a) => [a === null || a === undefined, "to be null or undefined"],
  toBeTruthy: (a) => [Boolean(a), "to be truthy"],
  toBeFalsy: (a) => [!a, "to be falsy"],
  toBeTrue: (a) => [a === true, "to be true"],
  toBeFalse: (a) => [a === false, "to be false"],
  toBeString: (a) => [typeof a === "string", "to be a string"],
  toBeNumber: (a) => [typeof a === "number", "to be a number"],
  toBeNaN: (a) => [Number.isNaN(a), "to be NaN"],
  toBeInstanceOf: (a, c) => [a instanceof c, `to be an instance of ${c?.name}`],
  toBeGreaterThan: (a, n) => [a > n, `to be > ${show(n)}`],
  toBeGreaterThanOrEqual: (a, n) => [a >= n, `to be >= ${show(n)}`],
  toBeLessThan: (a, n) => [a < n, `to be < ${show(n)}`],
  toBeLessThanOrEqual: (a, n) => [a <= n, `to be <= ${show(n)}`],
  toBeCloseTo: (a, n, digits = 2) => [Math.abs(a - n) < 10 ** -digits / 2, `to be close to ${n}`],
  toThrow: (fn, expected) => {
    const { threw, error } = thrownBy(fn);
    return [threw && errorMatches(error, expected), `to throw${expected === undefined ? "" : " " + show(expected)}${threw ? ` (threw ${show(error)})` : ""}`];
  },
};
matchers.toThrowError = matchers.toThrow!;

function build(actual: unknown, negate: boolean): Matchers {
  const m: Record<string, unknown> = {};
  for (const [name, check] of Object.entries(matchers)) {
    m[name] = (...args: unknown[]) => {
      const [pass, what] = check(actual, ...args);
      if (pass === negate) throw new ExpectationError(`expect(${show(actual)}).${negate ? "not." : ""}${name}: expected ${negate ? "not " : ""}${what}`);
    };
  }
  Object.defineProperty(m, "not", { get: () => build(actual, !negate) });
  Object.defineProperty(m, "resolves", { get: () => settled(actual, "resolves", negate) });
  Object.defineProperty(m, "rejects", { get: () => settled(actual, "rejects", negate) });
  return m as Matchers;
}

/** `.resolves` / `.rejects`: awaits, then applies the matcher to the value or the error (toThrow reads the error itself). */
function settled(promiseLike: unknown, how: "resolves" | "rejects", negate: boolean): AsyncMatchers {
  const m: Record<string, unknown> = {};
  for (const name of Object.keys(matchers)) {
    m[name] = async (...args: unknown[]) => {
      const p = typeof promiseLike === "function" ? (promiseLike as () => unknown)() : promiseLike;
      let value: unknown;
      let rejected = false;
      try {
        value = await p;
      } catch (err) {
        value = err;
        rejected = true;
      }
      if (how === "resolves" && rejected) throw new ExpectationError(`expected the promise to resolve, it rejected with ${show(value)}`);
      if (how === "rejects" && !rejected) throw new ExpectationError(`expected the promise to reject, it resolved to ${show(value)}`);
      if (how === "rejects" && (name === "toThrow" || name === "toThrowError")) {
        const pass = errorMatches(value, args[0]);
        if (pass === negate) throw new ExpectationError(`expected the rejection ${negate ? "not " : ""}to match ${show(args[0])}, got ${show(value)}`);
        return;
      }
      (build(value, negate) as Record<string, (...a: unknown[]) => void>)[name]!(...args);
    };
  }
  Object.defineProperty(m, "not", { get: () => settled(promiseLike, how, !negate) });
  return m as AsyncMatchers;
}

type Expect = ((actual: unknown) => Matchers) & {
  any(type: unknown): Asymmetric;
  anything(): Asymmetric;
  stringContaining(s: string): Asymmetric;
  stringMatching(re: RegExp | string): Asymmetric;
  objectContaining(o: Record<string, unknown>): Asymmetric;
  arrayContaining(items: readonly unknown[]): Asymmetric;
};

export const expect = ((actual: unknown) => build(actual, false)) as Expect;
expect.any = (type) => new AnyOf(type);
expect.anything = () => new Anything();
expect.stringContaining = (s) => new StringContaining(s);
expect.stringMatching = (re) => new StringMatching(re);
expect.objectContaining = (o) => new ObjectContaining(o);
expect.arrayContaining = (items) => new ArrayContaining(items);

/** bun:test's spyOn and mock are not provided: a test file that needs them stays Bun-only (scripts/test-deno). */
export function spyOn(): never {
  throw new Error("spyOn is not available under Deno (test/deno/bun-test.ts)");
}
