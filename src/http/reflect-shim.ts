// A minimal Reflect metadata stand-in for @peculiar/x509's dependency tsyringe, which refuses to
// load without `reflect-metadata`. x509 registers its parts by value and never reads constructor
// parameter metadata, so an in-memory map is enough. Import this module before @peculiar/x509.

type MetaTarget = object;
const store = new WeakMap<MetaTarget, Map<string | symbol, Map<unknown, unknown>>>();

function bucket(target: MetaTarget, property: string | symbol | undefined, create: boolean): Map<unknown, unknown> | undefined {
  let byProp = store.get(target);
  if (!byProp) {
    if (!create) return undefined;
    byProp = new Map();
    store.set(target, byProp);
  }
  const key = property ?? "";
  let meta = byProp.get(key);
  if (!meta && create) {
    meta = new Map();
    byProp.set(key, meta);
  }
  return meta;
}

const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== "function") {
  R.defineMetadata = (key: unknown, value: unknown, target: MetaTarget, property?: string | symbol) => void bucket(target, property, true)!.set(key, value);
  R.getOwnMetadata = (key: unknown, target: MetaTarget, property?: string | symbol) => bucket(target, property, false)?.get(key);
  R.getMetadata = (key: unknown, target: MetaTarget, property?: string | symbol): unknown => {
    for (let t: MetaTarget | null = target; t; t = Object.getPrototypeOf(t) as MetaTarget | null) {
      const v = bucket(t, property, false)?.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  R.hasMetadata = (key: unknown, target: MetaTarget, property?: string | symbol) => (R.getMetadata as (...a: unknown[]) => unknown)(key, target, property) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: MetaTarget, property?: string | symbol) => (R.defineMetadata as (...a: unknown[]) => void)(key, value, target, property);
}

export {};
