// Declares admin API routes from valibot schemas: one declaration registers the Hono route (API-key
// role check, validation that never echoes input) and records the spec the OpenAPI document is built from.

import { vValidator } from "@hono/valibot-validator";
import type { Context, Hono, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { rolesAtLeast } from "../api-keys.ts";
import { apiKeyAuth, BODY_LIMITS, bodyCap, errorBody, validationHook, type ValidationIssue } from "../middleware.ts";
import type { HttpDeps, HttpEnv } from "../types.ts";

/** Every admin API path starts with this. */
export const ADMIN_BASE = "/api/admin/v1";

/** The least privileged admin role a route accepts. */
export type AdminRole = "operator" | "admin" | "root";

export type Method = "get" | "post" | "put" | "patch" | "delete";

type Schema = v.GenericSchema;
/** A schema for path parameters or a query: an object whose entries are strings. */
type ObjectSchema = v.ObjectSchema<v.ObjectEntries, undefined> | v.StrictObjectSchema<v.ObjectEntries, undefined>;

export interface ResponseSpec {
  description: string;
  /** JSON body; absent for 204. */
  schema?: Schema;
}

/** One admin route as documented: what it takes, who may call it and what it answers. */
export interface AdminRouteSpec {
  method: Method;
  /** Hono syntax below ADMIN_BASE: "/users/:name". */
  path: string;
  summary: string;
  /** OpenAPI tag (the resource). */
  tag: string;
  minRole: AdminRole;
  params?: ObjectSchema;
  query?: ObjectSchema;
  body?: Schema;
  /** Success answers by status; the error answers (400, 401, 403, 404, 409…) are added by openapi.ts. */
  responses: Record<number, ResponseSpec>;
  /** Error statuses this route may answer besides 400/401/403 (e.g. 404, 409, 429, 503). */
  errors?: number[];
  /** Largest request body in bytes (413 beyond it); default BODY_LIMITS.admin (64 KiB). Imports take BODY_LIMITS.adminImport. */
  maxBodyBytes?: number;
}

type Out<S> = S extends Schema ? v.InferOutput<S> : undefined;

export interface RouteInput<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
}

type Ctx = Context<HttpEnv>;

/** Collects specs while registering routes on one Hono app. */
export class AdminRouter {
  readonly specs: AdminRouteSpec[] = [];

  constructor(
    readonly app: Hono<HttpEnv>,
    readonly deps: HttpDeps,
  ) {}

  /**
   * Registers `handler` for `spec` behind API-key authentication (401 for a missing, unknown,
   * disabled or expired key; 403 for a key below `spec.minRole`), then the body cap (413; the body is
   * read only once the key is known), then validation of params, query and JSON body (400 listing
   * paths and expectations, never values).
   */
  route<P extends ObjectSchema | undefined, Q extends ObjectSchema | undefined, B extends Schema | undefined>(
    spec: AdminRouteSpec & { params?: P; query?: Q; body?: B },
    handler: (c: Ctx, input: RouteInput<P, Q, B>) => Response | Promise<Response>,
  ): void {
    this.specs.push(spec);
    const chain: MiddlewareHandler<HttpEnv>[] = [
      apiKeyAuth({
        store: this.deps.store,
        roles: rolesAtLeast(spec.minRole),
        now: this.deps.now,
        onFail: (c, { reason }) => (reason === "role" ? c.json(errorBody(c, 403), 403) : c.json(errorBody(c, 401), 401)),
      }),
    ];
    chain.push(bodyCap(spec.maxBodyBytes ?? BODY_LIMITS.admin));
    const hook = validationHook();
    if (spec.params) chain.push(vValidator("param", spec.params, hook) as unknown as MiddlewareHandler<HttpEnv>);
    if (spec.query) chain.push(vValidator("query", spec.query, hook) as unknown as MiddlewareHandler<HttpEnv>);
    if (spec.body) chain.push(vValidator("json", spec.body, hook) as unknown as MiddlewareHandler<HttpEnv>);
    const run: MiddlewareHandler<HttpEnv> = async function adminHandler(c) {
      const req = c.req as unknown as { valid(target: string): unknown };
      const input = {
        params: spec.params ? req.valid("param") : undefined,
        query: spec.query ? req.valid("query") : undefined,
        body: spec.body ? req.valid("json") : undefined,
      } as RouteInput<P, Q, B>;
      return handler(c, input);
    };
    this.app.on([spec.method.toUpperCase()], [ADMIN_BASE + spec.path], ...chain, run);
  }
}

/**
 * 400 with one issue naming the field and what it must be (never the value received). The admin
 * operations throw AdminError instead, answered by the admin app's error handler (errors.ts).
 */
export function badRequest(c: Ctx, path: string, expected: string): Response {
  const issues: ValidationIssue[] = [{ path, expected }];
  return c.json({ ...errorBody(c, 400), issues }, 400);
}

/** An error answer (404, 409, 429, 503…) with an optional fixed explanation that never holds input. */
export function fail(c: Ctx, status: 403 | 404 | 409 | 429 | 503, message?: string): Response {
  return c.json(message === undefined ? errorBody(c, status) : { ...errorBody(c, status), message }, status);
}
