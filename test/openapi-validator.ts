/**
 * Checks HTTP answers against an OpenAPI 3.1 document, as a validating proxy would: the route and method are
 * documented, the status is, the content type is one the status documents, a JSON body matches its schema, and the
 * required headers are there and well formed. Used by test/setup/validate-responses.ts on every answer a store
 * server gives in the tests.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

type Json = Record<string, unknown>;
type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;

interface ResponseObject {
  description?: string;
  headers?: Record<string, { required?: boolean; schema?: Json }>;
  content?: Record<string, { schema?: Json }>;
}

/** An answer to check. Header names in lower case. */
export interface Exchange {
  method: string;
  /** The path and query, as requested. */
  url: string;
  status: number;
  headers: Record<string, string | undefined>;
  /** The body; undefined when it was not read (a stream). */
  body: Buffer | undefined;
}

/** `$ref`s inside the document replaced by what they point to (the document has no cycles). */
function deref(doc: Json, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((n) => deref(doc, n));
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    const target = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((at, part) => (at as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    return deref(doc, target);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(doc, v)]));
}

interface Route {
  template: string;
  pattern: RegExp;
  literal: number;
  operations: Record<string, { responses: Record<string, ResponseObject> }>;
}

export class ResponseValidator {
  private readonly routes: Route[];
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  constructor(document: Json) {
    // ajv-formats is CommonJS: its plugin is the module itself or its `default`, depending on the loader.
    const module = addFormats as unknown as FormatsPlugin & { default?: FormatsPlugin };
    (module.default ?? module)(this.ajv);
    const doc = deref(document, document) as { paths: Record<string, Route['operations']> };
    this.routes = Object.entries(doc.paths).map(([template, operations]) => {
      const parts = template.split('/');
      const source = parts
        .map((part, i) => {
          if (!/^\{\w+\}$/.test(part)) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          // The last parameter of a key route is a key: the server takes its `/`s raw as well as `%2F`
          // (the document says so in the parameter's description).
          return i === parts.length - 1 && /\{(key|prefix)\}/.test(part) ? '(.*)' : '([^/]+)';
        })
        .join('/');
      return {
        template,
        pattern: new RegExp(`^${source}$`),
        literal: template.replace(/\{\w+\}/g, '').length,
        operations,
      };
    });
    // The most specific template first, should two match.
    this.routes.sort((a, b) => b.literal - a.literal);
  }

  private validator(schema: Json): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) {
      v = this.ajv.compile(schema);
      this.compiled.set(schema, v);
    }
    return v;
  }

  /** What is wrong with an answer; empty when it is what the document says. */
  check(x: Exchange): string[] {
    const path = x.url.split('?')[0]!;
    const where = `${x.method} ${path} → ${x.status}`;
    const route = this.routes.find((r) => r.pattern.test(path));
    const operation = route?.operations[x.method.toLowerCase()];
    if (!route || !operation) {
      // No such route: the document's info says these answer 404 with the error body, and a URL that is not one
      // (malformed percent-encoding) 400.
      if (x.status === 404 && this.isErrorBody(x)) return [];
      if (x.status === 400 && !isDecodable(path) && this.isErrorBody(x)) return [];
      return [`${where}: no documented operation for ${x.method} ${path}`];
    }
    const response = operation.responses[String(x.status)] ?? operation.responses[`${String(x.status)[0]}XX`];
    if (!response) {
      return [
        `${where}: status ${x.status} is not documented for ${x.method} ${route.template} ` +
          `(documented: ${Object.keys(operation.responses).join(', ')})${x.body ? `; body ${x.body.toString().slice(0, 300)}` : ''}`,
      ];
    }
    const problems: string[] = [];
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      const value = x.headers[name.toLowerCase()];
      if (value === undefined) {
        if (header.required) problems.push(`${where}: required header ${name} is missing`);
        continue;
      }
      if (header.schema && !this.validator(header.schema)(value)) {
        problems.push(
          `${where}: header ${name}: ${JSON.stringify(value)} does not match ${JSON.stringify(header.schema)}`,
        );
      }
    }
    const type = (x.headers['content-type'] ?? '').split(';')[0]!.trim();
    const empty = x.body !== undefined && x.body.length === 0;
    if (!response.content) {
      if (x.body !== undefined && !empty) problems.push(`${where}: a body where none is documented`);
      return problems;
    }
    const media = response.content[type];
    if (!media) {
      problems.push(`${where}: content type ${JSON.stringify(type)}, documented: ${Object.keys(response.content)}`);
      return problems;
    }
    if (type === 'application/json' && x.body !== undefined && media.schema) {
      let body: unknown;
      try {
        body = JSON.parse(x.body.toString('utf8'));
      } catch {
        problems.push(`${where}: the body is not JSON: ${x.body.toString().slice(0, 200)}`);
        return problems;
      }
      const validate = this.validator(media.schema);
      if (!validate(body)) {
        const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}`).join('; ');
        problems.push(
          `${where}: the body does not match the schema: ${errors}; body ${JSON.stringify(body).slice(0, 300)}`,
        );
      }
    }
    return problems;
  }

  private isErrorBody(x: Exchange): boolean {
    if (x.body === undefined) return true;
    try {
      const e = (JSON.parse(x.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }).error;
      return typeof e?.code === 'string' && typeof e.message === 'string';
    } catch {
      return false;
    }
  }
}

/** Whether a path's percent-encoding is well formed. */
function isDecodable(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}
