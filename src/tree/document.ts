import { invalidArgument } from '../errors.js';

/**
 * Converting between a nested document (what JSON and YAML files hold) and keys: an object is a directory, anything
 * else a value. Strings are stored as they are; numbers and booleans as their text; other leaves (arrays, null) as
 * JSON. Going back, values are strings, except bytes that are not UTF-8, which become `{"$base64": "…"}`.
 */

export type Document = { [key: string]: Document | string };

/** The keys and values a document holds, below `prefix`. */
export function flattenDocument(doc: unknown, prefix = ''): { key: string; value: string | Uint8Array }[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw invalidArgument('the document must be an object (a mapping of names to values or further mappings)');
  }
  const out: { key: string; value: string | Uint8Array }[] = [];
  const walk = (node: Record<string, unknown>, at: string) => {
    for (const [name, value] of Object.entries(node)) {
      const key = at ? `${at}/${name}` : name;
      if (isBase64Leaf(value)) out.push({ key, value: Buffer.from(value.$base64, 'base64') });
      else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        walk(value as Record<string, unknown>, key);
      } else if (typeof value === 'string') out.push({ key, value });
      else if (typeof value === 'number' || typeof value === 'boolean') out.push({ key, value: String(value) });
      else out.push({ key, value: JSON.stringify(value) });
    }
  };
  walk(doc as Record<string, unknown>, prefix.replace(/^\/+|\/+$/g, ''));
  return out;
}

const isBase64Leaf = (v: unknown): v is { $base64: string } =>
  typeof v === 'object' &&
  v !== null &&
  Object.keys(v).length === 1 &&
  typeof (v as { $base64?: unknown }).$base64 === 'string';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A value as document text, or a base64 leaf when it is not valid UTF-8. */
export function valueToLeaf(bytes: Uint8Array): string | { $base64: string } {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return { $base64: Buffer.from(bytes).toString('base64') };
  }
}

/** Builds a nested document from keys relative to a prefix. */
export function nestDocument(entries: { key: string; value: Uint8Array }[], prefix = ''): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const base = prefix.replace(/^\/+|\/+$/g, '');
  for (const { key, value } of entries) {
    const rel = base && key.startsWith(`${base}/`) ? key.slice(base.length + 1) : key;
    const parts = rel.split('/');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts.at(-1)!] = valueToLeaf(value);
  }
  return root;
}
