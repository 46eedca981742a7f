// A flat list of every configuration option read from the schema: path, type, default, description, env var.
//
// Used by the loader (environment overrides and error messages) and by the reference generator,
// so that neither keeps its own copy of the option list.

import * as v from "valibot";
import { configSchema, type FieldKind, type FieldMeta } from "./schema.ts";

export interface ConfigField {
  /** Dotted path: "log_level", "radius.challenge_ttl_s". */
  path: string;
  /** Section name ("radius", or "delivery.sms" for a sub-table), or undefined for a top-level key. */
  section: string | undefined;
  key: string;
  kind: FieldKind;
  /** Completes "PATH must be …" in error messages. */
  must: string;
  /** The built-in default (undefined when it is derived, as for delivery.allowed_countries). */
  defaultValue: unknown;
  /** False for a key that must be given (only inside arrays of tables, such as ldap.name). */
  optional: boolean;
  description: string;
  /** The environment variable that overrides it: PORTCULLIS_<SECTION>_<KEY>. */
  env: string;
}

export interface ConfigSection {
  name: string;
  description: string;
}

/**
 * An array of tables such as `[[ldap]]`, those nested in it (`[[ldap.reply]]`) and those inside a
 * section (`[[delivery.gateway]]`). Its keys come
 * from the file only (no PORTCULLIS_<SECTION>_<KEY> variable): `env` is "" on its fields.
 */
export interface ConfigTableArray {
  /** Dotted name: "ldap", "ldap.reply". */
  name: string;
  description: string;
  fields: ConfigField[];
  children: ConfigTableArray[];
}

type AnySchema = v.GenericSchema & { type: string; wrapped?: AnySchema; default?: unknown; entries?: Record<string, AnySchema> };

type DescribedSchema = Parameters<typeof v.getDescription>[0];

function unwrap(schema: AnySchema): AnySchema {
  return schema.type === "optional" && schema.wrapped ? schema.wrapped : schema;
}

function leaf(section: string | undefined, key: string, schema: AnySchema, { env = true } = {}): ConfigField {
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
    optional: schema.type === "optional",
    description,
    env: env ? `PORTCULLIS_${section ? section.toUpperCase().replaceAll(".", "_") + "_" : ""}${key.toUpperCase()}` : "",
  };
}

/** The strict object inside `array(strictObject)` (optionally piped), or undefined. */
function tableArrayItem(schema: AnySchema): AnySchema | undefined {
  const inner = unwrap(schema);
  const root = (inner as { pipe?: AnySchema[] }).pipe?.[0] ?? inner;
  const item = root.type === "array" ? (root as { item?: AnySchema }).item : undefined;
  return item?.type === "strict_object" && item.entries ? item : undefined;
}

/** The strict object of a sub-table entry (optional(pipe(strictObject, description))), or undefined. */
function subsectionRoot(schema: AnySchema): AnySchema | undefined {
  const root = (unwrap(schema) as { pipe?: AnySchema[] }).pipe?.[0];
  return root?.type === "strict_object" && root.entries ? root : undefined;
}

function tableArray(name: string, schema: AnySchema): ConfigTableArray {
  const item = tableArrayItem(schema)!;
  const out: ConfigTableArray = { name, description: v.getDescription(unwrap(schema) as unknown as DescribedSchema) ?? "", fields: [], children: [] };
  for (const [k, s] of Object.entries(item.entries!)) {
    if (tableArrayItem(s)) out.children.push(tableArray(`${name}.${k}`, s));
    else out.fields.push(leaf(name, k, s, { env: false }));
  }
  return out;
}

function walk(): { fields: ConfigField[]; sections: ConfigSection[]; tableArrays: ConfigTableArray[] } {
  const fields: ConfigField[] = [];
  const sections: ConfigSection[] = [];
  const tableArrays: ConfigTableArray[] = [];
  for (const [key, entry] of Object.entries(configSchema.entries as unknown as Record<string, AnySchema>)) {
    const inner = unwrap(entry);
    const pipeRoot = (inner as { pipe?: AnySchema[] }).pipe?.[0];
    if (tableArrayItem(entry)) {
      tableArrays.push(tableArray(key, entry));
    } else if (pipeRoot?.type === "strict_object" && pipeRoot.entries) {
      sections.push({ name: key, description: v.getDescription(inner as unknown as DescribedSchema) ?? "" });
      const subsections: Array<[string, AnySchema]> = [];
      for (const [k, s] of Object.entries(pipeRoot.entries)) {
        // A sub-table such as [delivery.sms]: listed as its own section after the parent's keys.
        if (subsectionRoot(s)) subsections.push([k, s]);
        // An array of tables inside a section ([[delivery.gateway]]): file only, like [[ldap]].
        else if (tableArrayItem(s)) tableArrays.push(tableArray(`${key}.${k}`, s));
        else fields.push(leaf(key, k, s));
      }
      for (const [k, s] of subsections) {
        const name = `${key}.${k}`;
        sections.push({ name, description: v.getDescription(unwrap(s) as unknown as DescribedSchema) ?? "" });
        for (const [kk, ss] of Object.entries(subsectionRoot(s)!.entries!)) fields.push(leaf(name, kk, ss));
      }
    } else {
      fields.push(leaf(undefined, key, entry));
    }
  }
  return { fields, sections, tableArrays };
}

const walked = walk();

/** Every leaf option, in schema order. */
export const CONFIG_FIELDS: readonly ConfigField[] = walked.fields;

/** The sections ([radius], [otp], …) in schema order. */
export const CONFIG_SECTIONS: readonly ConfigSection[] = walked.sections;

/**
 * Arrays of tables ([[ldap]] with [[ldap.reply]], [[delivery.gateway]]), in schema order; their
 * keys are not in CONFIG_FIELDS.
 */
export const CONFIG_TABLE_ARRAYS: readonly ConfigTableArray[] = walked.tableArrays;

const byPath = new Map(CONFIG_FIELDS.map((f) => [f.path, f]));

/** The field at a dotted path, or undefined. */
export function fieldAt(path: string): ConfigField | undefined {
  return byPath.get(path);
}
