import { invalidArgument } from '../errors.js';

/**
 * Key patterns of `.store/schema.json` (docs/ARCHITECTURE.md, "Schemas"): segments separated by `/`, where a segment
 * `**` stands for any number of segments (none included), and `*` inside a segment for any run of characters within
 * that one segment (`vm/*` matches `vm/web1`, not `vm/web1/memory`; `app/*.json` matches `app/web.json`).
 */
export interface KeyPattern {
  readonly source: string;
  matches(key: string): boolean;
}

const escapeRegex = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** Compiles a pattern; INVALID_ARGUMENT for an empty one or an empty segment (which no key could match). */
export function keyPattern(source: string): KeyPattern {
  const segments = source.split('/');
  if (source === '' || segments.some((s) => s === '')) {
    throw invalidArgument(
      `schema pattern ${JSON.stringify(source)} has an empty segment: write segments between single slashes, as keys are`,
    );
  }
  const parts = segments.map((segment, i) => {
    const last = i === segments.length - 1;
    // `**` as a whole segment: any segments; with the slash after it, so `a/**/b` also matches `a/b`.
    if (segment === '**') return last ? '.*' : '(?:[^/]+/)*';
    return segment.split('*').map(escapeRegex).join('[^/]*') + (last ? '' : '/');
  });
  const regex = new RegExp(`^${parts.join('')}$`, 's');
  return { source, matches: (key) => regex.test(key) };
}
