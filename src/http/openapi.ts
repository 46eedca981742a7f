// The OpenAPI 3.1 document of the admin API, generated from the valibot schemas its routes validate
// with (@valibot/to-json-schema), so the document cannot drift from what the server accepts.

import { toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { ADMIN_BASE, type AdminRouteSpec } from "./admin/route.ts";

/** Where the admin listener serves the document. */
export const OPENAPI_PATH = "/api/openapi.json";

type Json = Record<string, unknown>;

/** Draft 2020-12 JSON Schema (OpenAPI 3.1's dialect) without the `$schema` key. Custom checks are left out. */
function schemaOf(schema: v.GenericSchema): Json {
  const { $schema: _drop, ...rest } = toJsonSchema(schema, { target: "draft-2020-12", errorMode: "ignore" }) as Json;
  return rest;
}

/** "/users/:name" → "/api/admin/v1/users/{name}". */
export function openAPIPath(honoPath: string): string {
  return (ADMIN_BASE + honoPath).replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid input: `issues` lists the paths and what was expected, never the values",
  401: "Missing, unknown, disabled or expired API key",
  403: "The key's role may not do this",
  404: "No such resource",
  409: "Conflicts with the current state (exists, declared in the configuration file, …)",
  413: "Body too large",
  429: "Rate limit reached",
  503: "Not available on this node",
};

function parameters(spec: AdminRouteSpec): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [
    ["path", spec.params],
    ["query", spec.query],
  ] as const) {
    if (!schema) continue;
    for (const [name, entry] of Object.entries(schema.entries)) {
      const optional = (entry as { type: string }).type === "optional";
      out.push({ name, in: where, required: where === "path" || !optional, schema: schemaOf(entry as v.GenericSchema) });
    }
  }
  return out;
}

/** The OpenAPI 3.1 document for `specs`. Throws when a schema cannot be converted at all. */
export function buildOpenAPI(specs: readonly AdminRouteSpec[], { version = "1" }: { version?: string } = {}): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of specs) {
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      responses[status] = r.schema ? { description: r.description, content: { "application/json": { schema: schemaOf(r.schema) } } } : { description: r.description };
    }
    for (const status of [400, 401, 403, ...(spec.errors ?? [])]) {
      responses[String(status)] = { $ref: `#/components/responses/E${status}` };
    }
    const op: Json = {
      operationId: `${spec.method}${spec.path.replace(/[/:]+([a-z])/g, (_m, ch: string) => ch.toUpperCase()).replace(/[^A-Za-z0-9]/g, "")}`,
      summary: spec.summary,
      tags: [spec.tag],
      "x-min-role": spec.minRole,
      parameters: parameters(spec),
      responses,
    };
    if (spec.body) op.requestBody = { required: true, content: { "application/json": { schema: schemaOf(spec.body) } } };
    (paths[openAPIPath(spec.path)] ??= {})[spec.method] = op;
  }
  const errorSchema = {
    type: "object",
    required: ["error"],
    properties: {
      error: { type: "string", description: "fixed reason: bad_request, unauthorized, forbidden, not_found, conflict…" },
      requestId: { type: "string" },
      message: { type: "string", description: "fixed explanation; never holds input" },
      issues: { type: "array", items: { type: "object", required: ["path", "expected"], properties: { path: { type: "string" }, expected: { type: ["string", "null"] } } } },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "Portcullis admin API",
      version,
      description:
        "Users, tokens, RADIUS clients, API keys, Magic Link endpoint profiles and delivery. Authenticate with an admin API key (`portcullis apikey add NAME --role operator|admin|root`) in the `api-key` header or as `Authorization: Bearer`. Operators may only read (GET); admins may change everything except admin and root keys; root may do everything. `x-min-role` names the least role each operation needs.",
    },
    servers: [{ url: "/" }],
    security: [{ apiKey: [] }, { bearer: [] }],
    tags: [...new Set(specs.map((s) => s.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: "apiKey", in: "header", name: "api-key" },
        bearer: { type: "http", scheme: "bearer" },
      },
      schemas: { Error: errorSchema },
      responses: Object.fromEntries(
        Object.entries(ERROR_DESCRIPTIONS).map(([status, description]) => [`E${status}`, { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } }]),
      ),
    },
  };
}
