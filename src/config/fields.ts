// A flat list of every configuration option read from the schema: path, type, default, description, env var.
//
// Used by the loader (environment overrides and error messages) and by the reference generator,
// so that neither keeps its own copy of the option list.

import * as v from "valibot";
import { configSchema, type FieldKind, type FieldMeta } from "./schema.ts";

export interface ConfigField {
  /** Dotted path: "log_level", "radius.challenge_ttl_s". */
  path: string;
  /** Section name, or undefined for a top-level key. */
  section: string | undefined;
  key: string;
  kind: FieldKind;
  /** Completes "PATH must be …" in error messages. */
  must: string;
  /** The built-in default (undefined when it is derived, as for delivery.allowed_countries). */
  defaultValue: unknown;
  description: string;
  /** The environment variable that overrides it: PORTCULLIS_<SECTION>_<KEY>. */
  env: string;
}

export interface ConfigSection {
  name: string;
  description: string;
}

type AnySchema = v.GenericSchema & { type: string; wrapped?: AnySchema; default?: unknown; entries?: Record<string, AnySchema> };

type DescribedSchema = Parameters<typeof v.getDescription>[0];

function unwrap(schema: AnySchema): AnySchema {
  return schema.type === "optional" && schema.wrapped ? schema.wrapped : schema;
}

function leaf(section: string | undefined, key: string, schema: AnySchema): ConfigField {
  const inner = unwrap(schema) as unknown as DescribedSchema;
  const m = v.getMetadata(inner as unknown as Parameters<typeof v.getMetadata>[0]) as Partial<FieldMeta>;
  const description = v.getDescription(inner) ?? "";
  if (!m.kind || !m.must || description === "") throw new TypeError(`config schema: ${key} lacks metadata or description`);
  return {
    path: section ? `${section}.${key}` : key,
    section,
    key,
    kind: m.kind,
    must: m.must,
    defaultValue: schema.default,
    description,
    env: `PORTCULLIS_${section ? section.toUpperCase() + "_" : ""}${key.toUpperCase()}`,
  };
}

function walk(): { fields: ConfigField[]; sections: ConfigSection[] } {
  const fields: ConfigField[] = [];
  const sections: ConfigSection[] = [];
  for (const [key, entry] of Object.entries(configSchema.entries as unknown as Record<string, AnySchema>)) {
    const inner = unwrap(entry);
    const pipeRoot = (inner as { pipe?: AnySchema[] }).pipe?.[0];
    if (pipeRoot?.type === "strict_object" && pipeRoot.entries) {
      sections.push({ name: key, description: v.getDescription(inner as unknown as DescribedSchema) ?? "" });
      for (const [k, s] of Object.entries(pipeRoot.entries)) fields.push(leaf(key, k, s));
    } else {
      fields.push(leaf(undefined, key, entry));
    }
  }
  return { fields, sections };
}

const walked = walk();

/** Every leaf option, in schema order. */
export const CONFIG_FIELDS: readonly ConfigField[] = walked.fields;

/** The sections ([radius], [otp], …) in schema order. */
export const CONFIG_SECTIONS: readonly ConfigSection[] = walked.sections;

const byPath = new Map(CONFIG_FIELDS.map((f) => [f.path, f]));

/** The field at a dotted path, or undefined. */
export function fieldAt(path: string): ConfigField | undefined {
  return byPath.get(path);
}
