import type { Violation } from '../src/errors.js';
import { StoreClient } from '../src/http/client.js';

/**
 * The UI talks to the server through the store's own HTTP client (src/http/client.ts), the same code the CLI uses:
 * one definition of the wire format, bundled for the browser. The token lives in this tab's sessionStorage only.
 */

const TOKEN = 'gitstore.token';

export const session = {
  token: (): string | undefined => sessionStorage.getItem(TOKEN) ?? undefined,
  signIn: (token: string) => sessionStorage.setItem(TOKEN, token),
  signOut: () => sessionStorage.removeItem(TOKEN),
};

export const clientFor = (token: string | undefined) => new StoreClient(location.origin, { token });

export type Client = StoreClient;

/** The store's error code of a failure (UNAUTHORIZED, PRECONDITION_FAILED, …), if it is one. */
export const codeOf = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;

export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * What an INVALID_VALUE refusal lists (`data.violations`, at most 100 of `data.total`): each value that breaks the
 * branch's schemas, where in it, and the rule. Null for any other failure.
 */
export function violationsOf(e: unknown): { violations: Violation[]; total: number } | null {
  if (codeOf(e) !== 'INVALID_VALUE') return null;
  const data = (e as { data?: { violations?: unknown; total?: unknown } }).data;
  if (!Array.isArray(data?.violations) || data.violations.length === 0) return null;
  const violations = data.violations as Violation[];
  return { violations, total: typeof data.total === 'number' ? data.total : violations.length };
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** How a value is shown: text, JSON (pretty-printed), or bytes. */
export type Shown =
  | { kind: 'text'; text: string }
  | { kind: 'json'; text: string; pretty: string }
  | { kind: 'binary' };

export function show(value: Uint8Array): Shown {
  let text: string;
  try {
    text = strict.decode(value);
  } catch {
    return { kind: 'binary' };
  }
  // A NUL is not something a person types: such a value is bytes, even when it decodes.
  if (text.includes('\u0000')) return { kind: 'binary' };
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { kind: 'json', text, pretty: JSON.stringify(JSON.parse(text), null, 2) };
    } catch {
      // Not JSON after all: text.
    }
  }
  return { kind: 'text', text };
}

/** The first bytes of a value as a hex dump, 16 to a line. */
export function hexPreview(value: Uint8Array, max = 256): string {
  const lines: string[] = [];
  for (let i = 0; i < Math.min(value.length, max); i += 16) {
    const row = [...value.subarray(i, Math.min(i + 16, max))];
    const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

export const shortId = (oid: string | null | undefined) => (oid ? oid.slice(0, 10) : '—');

export const when = (iso: string) => new Date(iso).toLocaleString();

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
