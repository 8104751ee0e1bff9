/**
 * Where the UI is, in the URL's fragment, so every view has a link that can be bookmarked or opened in another tab,
 * and the server serves one page. Branch names and paths are percent-encoded as one segment each.
 */
export type Route =
  | { view: 'tree'; branch: string; path: string }
  | { view: 'key'; branch: string; key: string; tab: 'value' | 'history' }
  | { view: 'blame'; branch: string; path: string }
  | { view: 'branches' }
  | { view: 'compare'; a: string; b: string }
  | { view: 'merge'; into: string; from: string };

const enc = encodeURIComponent;

export function href(r: Route): string {
  switch (r.view) {
    case 'tree':
      return `#/tree/${enc(r.branch)}/${enc(r.path)}`;
    case 'key':
      return `#/${r.tab === 'history' ? 'history' : 'key'}/${enc(r.branch)}/${enc(r.key)}`;
    case 'blame':
      return `#/blame/${enc(r.branch)}/${enc(r.path)}`;
    case 'branches':
      return '#/branches';
    case 'compare':
      return `#/compare/${enc(r.a)}/${enc(r.b)}`;
    case 'merge':
      return `#/merge/${enc(r.into)}/${enc(r.from)}`;
  }
}

/** The route of a fragment; null for one the UI does not know (it then shows the default branch's top). */
export function parse(hash: string): Route | null {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const [view, a = '', b = ''] = parts;
  let one: string;
  let two: string;
  try {
    one = decodeURIComponent(a);
    two = decodeURIComponent(b);
  } catch {
    return null;
  }
  switch (view) {
    case 'tree':
      return one ? { view: 'tree', branch: one, path: two } : null;
    case 'key':
    case 'history':
      return one && two ? { view: 'key', branch: one, key: two, tab: view === 'history' ? 'history' : 'value' } : null;
    case 'blame':
      return one ? { view: 'blame', branch: one, path: two } : null;
    case 'branches':
      return { view: 'branches' };
    case 'compare':
      return one && two ? { view: 'compare', a: one, b: two } : null;
    case 'merge':
      return one && two ? { view: 'merge', into: one, from: two } : null;
    default:
      return null;
  }
}

/** The parent directory of a key or directory ('' for the top). */
export const parentOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');

export const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);
