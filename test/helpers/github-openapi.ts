// Checks HTTP traffic against GitHub's own OpenAPI description (from @octokit/openapi), so that the fake
// GitHub in github-server.ts and the client under test cannot agree on a shape the real API does not have.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;

type Json = unknown;
interface Schema {
  [key: string]: Json;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
  'x-multi-segment'?: boolean;
}
interface Operation {
  operationId: string;
  parameters?: (Parameter | { $ref: string })[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> } | { $ref: string };
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> } | { $ref: string }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; parameters: Record<string, Parameter>; responses: Record<string, unknown> };
}

export interface MatchedOperation {
  operationId: string;
  method: string;
  template: string;
  params: Record<string, string>;
}

// Statuses GitHub answers on any endpoint although the description does not list them on each one
// (bad credentials, missing permission, hidden or missing repository, outages). Their body must still be
// GitHub's basic error shape.
const GLOBAL_ERROR_STATUSES = new Set([401, 403, 404, 500, 502, 503]);

const SPEC_ID = 'https://api.github.com/openapi.json';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  names: string[];
  literal: number;
  operation: Operation;
}

export class OpenApiValidator {
  private readonly doc: Document;
  private readonly routes: Route[] = [];
  private readonly ajv: Ajv;
  private readonly paramAjv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(doc: Document) {
    this.doc = doc;
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
    addFormats(this.ajv);
    // GitHub's own formats, beyond JSON Schema's.
    this.ajv.addFormat('repo.nwo', /^[\w.-]+\/[\w.-]+$/);
    // Path and query values arrive as strings; coerce them to the declared type before checking.
    this.paramAjv = new Ajv({ strict: false, allErrors: true, validateSchema: false, coerceTypes: true });
    addFormats(this.paramAjv);
    const components = { $id: SPEC_ID, components: { schemas: rebase(doc.components.schemas) } };
    this.ajv.addSchema(components);
    this.paramAjv.addSchema(components);
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of HTTP_METHODS) {
        const operation = item[method];
        if (!operation) continue;
        const params = this.parameters(operation);
        const names: string[] = [];
        const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, (_m, name: string) => {
          names.push(name);
          const multi = params.find((p) => p.in === 'path' && p.name === name)?.['x-multi-segment'];
          return multi ? '(.+)' : '([^/]+)';
        });
        this.routes.push({
          method: method.toUpperCase(),
          template,
          regex: new RegExp(`^${source}$`),
          names,
          literal: template.replace(/\{\w+\}/g, '').length,
          operation,
        });
      }
    }
    // The most literal template wins: `/repos/{owner}/{repo}/git/refs` before `/repos/{owner}/{repo}/{x}`.
    this.routes.sort((a, b) => b.literal - a.literal);
  }

  static load(file = 'api.github.com.json'): OpenApiValidator {
    const require = createRequire(import.meta.url);
    const dir = path.join(path.dirname(require.resolve('@octokit/openapi/package.json')), 'generated');
    return new OpenApiValidator(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Document);
  }

  match(method: string, pathname: string): MatchedOperation | undefined {
    for (const route of this.routes) {
      if (route.method !== method.toUpperCase()) continue;
      const m = route.regex.exec(pathname);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
      return { operationId: route.operation.operationId, method: route.method, template: route.template, params };
    }
    return undefined;
  }

  /** Problems with a request: path and query parameters, and the JSON body. */
  validateRequest(match: MatchedOperation, query: URLSearchParams, body: Json | undefined): string[] {
    const operation = this.operation(match);
    const problems: string[] = [];
    const params = this.parameters(operation);
    for (const p of params.filter((x) => x.in === 'path')) {
      problems.push(...this.checkParam(match, p, match.params[p.name]));
    }
    const queryParams = params.filter((x) => x.in === 'query');
    for (const key of new Set(query.keys())) {
      if (!queryParams.some((p) => p.name === key)) problems.push(`query parameter "${key}" is not defined for ${match.operationId}`);
    }
    for (const p of queryParams) {
      const value = query.get(p.name);
      if (value === null) {
        if (p.required) problems.push(`required query parameter "${p.name}" is missing`);
      } else problems.push(...this.checkParam(match, p, value));
    }
    const requestBody = this.deref(operation.requestBody) as Exclude<Operation['requestBody'], { $ref: string }>;
    if (!requestBody) {
      if (body !== undefined) problems.push(`${match.operationId} takes no request body`);
      return problems;
    }
    if (body === undefined) {
      if (requestBody.required) problems.push('request body is required');
      return problems;
    }
    const schema = requestBody.content?.['application/json']?.schema;
    if (!schema) return [...problems, `${match.operationId} has no JSON request body`];
    const validate = this.compile(`${match.operationId} request`, schema, this.ajv);
    if (!validate(body)) problems.push(...describe('request body', validate.errors));
    return problems;
  }

  /** Problems with a response: a status the operation can answer, and a body of the declared shape. */
  validateResponse(match: MatchedOperation, status: number, body: Json | undefined): string[] {
    const operation = this.operation(match);
    const declared = this.deref(operation.responses[String(status)]) as { content?: Record<string, { schema?: Schema }> } | undefined;
    let schema: Schema | undefined;
    let key = `${match.operationId} ${status}`;
    if (declared) {
      const content = declared.content;
      if (!content && status < 400) return body === undefined ? [] : [`status ${status} of ${match.operationId} has no body, but one was sent`];
      // Some error statuses are listed without a body although GitHub sends its basic error shape with them.
      schema = !content ? { $ref: '#/components/schemas/basic-error' } : content['application/json']?.schema ?? Object.entries(content).find(([type]) => /json/.test(type))?.[1].schema;
      if (!content) key = 'global-error';
      if (!schema) return [];
    } else if (GLOBAL_ERROR_STATUSES.has(status)) {
      schema = { $ref: '#/components/schemas/basic-error' };
      key = 'global-error';
    } else {
      return [`status ${status} is not a documented response of ${match.operationId}`];
    }
    if (body === undefined) return [`status ${status} of ${match.operationId} needs a body`];
    const validate = this.compile(key, schema, this.ajv);
    return validate(body) ? [] : describe(`response ${status} body`, validate.errors);
  }

  /** The operation's page in GitHub's REST documentation, as error bodies cite it. */
  docsUrl(match: MatchedOperation): string | undefined {
    return (this.operation(match) as { externalDocs?: { url?: string } }).externalDocs?.url;
  }

  private operation(match: MatchedOperation): Operation {
    return this.doc.paths[match.template]![match.method.toLowerCase()]!;
  }

  private parameters(operation: Operation): Parameter[] {
    return (operation.parameters ?? []).map((p) => this.deref(p) as Parameter);
  }

  private checkParam(match: MatchedOperation, p: Parameter, value: string | undefined): string[] {
    if (!p.schema || value === undefined) return [];
    // Coercion works on a property of an object, not on a bare value.
    const validate = this.compile(`${match.operationId} ${p.in} ${p.name}`, { type: 'object', properties: { value: p.schema } }, this.paramAjv);
    if (validate({ value })) return [];
    return describe(`${p.in} parameter "${p.name}"`, validate.errors?.map((e) => ({ ...e, instancePath: e.instancePath.replace(/^\/value/, '') })));
  }

  private deref<T>(node: T | { $ref: string } | undefined): T | undefined {
    let current: unknown = node;
    while (current && typeof current === 'object' && '$ref' in current) {
      const ref = (current as { $ref: string }).$ref;
      current = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((at, part) => (at as Record<string, unknown>)[part], this.doc);
    }
    return current as T | undefined;
  }

  private compile(key: string, schema: Schema, ajv: Ajv): ValidateFunction {
    const cacheKey = `${ajv === this.ajv ? 'body' : 'param'}:${key}`;
    let validate = this.cache.get(cacheKey);
    if (!validate) {
      validate = ajv.compile(rebase(schema) as Schema);
      this.cache.set(cacheKey, validate);
    }
    return validate;
  }
}

// Local `#/components/...` references inside an operation point into the whole document; make them absolute.
// `oneOf` is checked as `anyOf`: GitHub's alternatives are open objects that overlap (a 409 of the contents API
// is `oneOf: [basic-error, repository-rule-violation-error]`, and every basic error matches both).
function rebase(node: Json): Json {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(node)) {
      const key = k === 'oneOf' ? 'anyOf' : k;
      out[key] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `${SPEC_ID}${v}` : rebase(v);
    }
    return out;
  }
  return node;
}

function describe(what: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).slice(0, 10).map((e) => `${what}${e.instancePath || ''} ${e.message ?? 'is invalid'}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}
