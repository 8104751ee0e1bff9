import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ListEntry } from '../src/store/types.js';
import { type Client, codeOf } from './api.js';
import { ErrorBox, PathBar, useLoad, useWatch } from './parts.js';
import { baseName, href } from './route.js';

/** Row height in pixels: the list draws only the rows in view, so a directory of 100,000 keys stays fast. */
const ROW = 30;
/** Rows drawn beyond the visible ones, above and below, so a fast scroll does not show blanks. */
const OVERSCAN = 10;
/** Entries asked for first: enough to fill any screen at once; the rest of a large directory follows. */
const PAGE = 500;

/**
 * A directory's listing in two steps: its first PAGE entries (drawn and usable at once) with the directory's size,
 * then the rest, read at the same commit, so the two parts are one consistent listing. A directory of 100,000 keys
 * is one 8.7 MB answer otherwise, which the person would wait for before seeing anything.
 */
function useListing(client: Client, branch: string, path: string) {
  const first = useLoad(() => client.list(path, { branch, limit: PAGE }), [client, branch, path]);
  const [rest, setRest] = useState<{ commit: string | null; entries: ListEntry[] } | null>(null);
  useEffect(() => {
    setRest(null);
    const page = first.data;
    if (!page || page.total === undefined || page.total <= page.entries.length) return;
    let live = true;
    client.list(path, { branch, at: page.commit ?? undefined, offset: page.entries.length }).then(
      (more) => {
        if (live) setRest({ commit: page.commit, entries: [...page.entries, ...more.entries] });
      },
      () => {
        // The first page stays; a reload (a write below, a new visit) asks again.
      },
    );
    return () => {
      live = false;
    };
  }, [client, branch, path, first.data]);
  const data = rest && rest.commit === first.data?.commit ? rest : first.data;
  return { ...first, data, total: first.data?.total ?? data?.entries.length ?? 0 };
}

/** One directory of a branch: its entries (live), a filter by name, and a new key where the token may write. */
export function TreeView({ client, branch, path }: { client: Client; branch: string; path: string }) {
  const listing = useListing(client, branch, path);
  const rights = useLoad(() => client.me({ branch, paths: [path ? `${path}/` : ''] }), [client, branch, path]);
  const [filter, setFilter] = useState('');
  const [changed, setChanged] = useState<Map<string, number>>(new Map());
  useEffect(() => setFilter(''), [branch, path]);

  // Another client's write below this directory: mark the entry it went through, and list again.
  useWatch(client, branch, path, (keys) => {
    const now = Date.now();
    setChanged((old) => {
      const next = new Map(old);
      for (const key of keys) {
        const rest = path ? key.slice(path.length + 1) : key;
        next.set(path ? `${path}/${rest.split('/')[0]}` : rest.split('/')[0]!, now);
      }
      return next;
    });
    listing.reload();
  });

  const entries = useMemo(() => {
    const all = listing.data?.entries ?? [];
    return filter ? all.filter((e) => baseName(e.key).startsWith(filter)) : all;
  }, [listing.data, filter]);
  const canWrite = rights.data?.paths[path ? `${path}/` : '']?.write ?? false;

  return (
    <section class="tree" aria-label="Keys">
      <PathBar branch={branch} path={path} />
      <div class="toolbar">
        <label>
          Filter by name{' '}
          <input
            type="search"
            value={filter}
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
            placeholder="prefix"
          />
        </label>
        <a href={href({ view: 'blame', branch, path })}>Blame this directory</a>
        {listing.data && (
          <span class="muted" aria-live="polite">
            {filter ? `${entries.length} of ${listing.total}` : listing.total} entries
          </span>
        )}
      </div>
      {listing.error && codeOf(listing.error) !== 'NOT_FOUND' ? <ErrorBox error={listing.error} /> : null}
      {codeOf(listing.error) === 'NOT_FOUND' && <p class="muted">Nothing here yet.</p>}
      {listing.data && (
        <VirtualList
          branch={branch}
          entries={entries}
          // Until the rest of a large directory is in, the list has its full height, and rows not yet here wait.
          total={filter ? entries.length : Math.max(listing.total, entries.length)}
          changed={changed}
        />
      )}
      {canWrite && <NewKey client={client} branch={branch} dir={path} />}
    </section>
  );
}

function VirtualList(props: { branch: string; entries: ListEntry[]; total: number; changed: Map<string, number> }) {
  const { branch, entries, total, changed } = props;
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setHeight(el.clientHeight || 600);
    const observer = new ResizeObserver(() => setHeight(el.clientHeight || 600));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
  const last = Math.min(total, Math.ceil((top + height) / ROW) + OVERSCAN);

  // Arrow keys move between rows, scrolling the list so the next row is drawn before it takes the focus.
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const current = Number((document.activeElement as HTMLElement | null)?.dataset.index ?? -1);
    const next = Math.max(0, Math.min(entries.length - 1, current + (e.key === 'ArrowDown' ? 1 : -1)));
    e.preventDefault();
    const el = box.current!;
    if (next * ROW < el.scrollTop) el.scrollTop = next * ROW;
    else if ((next + 1) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (next + 1) * ROW - el.clientHeight;
    setTop(el.scrollTop);
    requestAnimationFrame(() => el.querySelector<HTMLElement>(`[data-index="${next}"]`)?.focus());
  };

  // Listened to on the list's box, where the focused row's key presses arrive.
  const keys = useRef(onKeyDown);
  keys.current = onKeyDown;
  useEffect(() => {
    const el = box.current;
    const on = (e: KeyboardEvent) => keys.current(e);
    el?.addEventListener('keydown', on);
    return () => el?.removeEventListener('keydown', on);
  }, []);

  return (
    <div class="rows" ref={box} onScroll={(e) => setTop((e.target as HTMLElement).scrollTop)}>
      {total === 0 && <p class="muted">No entries.</p>}
      <ul aria-label={`${total} entries`} style={{ height: `${total * ROW}px` }}>
        {Array.from({ length: Math.max(0, last - first) }, (_, i) => {
          const index = first + i;
          const e = entries[index];
          if (!e) {
            return (
              <li key={`waiting-${index}`} class="row muted" style={{ top: `${index * ROW}px` }}>
                …
              </li>
            );
          }
          const dir = e.type === 'dir';
          const mark = changed.has(e.key);
          return (
            <li key={e.key} class="row" style={{ top: `${index * ROW}px` }}>
              <a
                data-index={index}
                href={
                  dir
                    ? href({ view: 'tree', branch, path: e.key })
                    : href({ view: 'key', branch, key: e.key, tab: 'value' })
                }
                class={mark ? 'changed' : ''}
              >
                <span class="icon" aria-hidden="true">
                  {dir ? '▸' : '·'}
                </span>
                {baseName(e.key)}
                {dir ? '/' : ''}
                {mark && (
                  <span class="badge" title="changed by another client">
                    changed
                  </span>
                )}
              </a>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

/** Creates a key in this directory: typed text, or a file's bytes. */
function NewKey({ client, branch, dir }: { client: Client; branch: string; dir: string }) {
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const key = dir ? `${dir}/${name}` : name;
    try {
      const value = file ? new Uint8Array(await file.arrayBuffer()) : text;
      // Create only: a key someone made meanwhile is not overwritten.
      await client.set(key, value, { branch, ifNoneMatch: true });
      location.hash = href({ view: 'key', branch, key, tab: 'value' });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="newkey" onSubmit={submit} aria-label="New key">
      <h2>New key</h2>
      <label>
        Name <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Value
        <textarea
          rows={3}
          value={text}
          disabled={file !== null}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <label>
        Or upload a file{' '}
        <input type="file" onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)} />
      </label>
      <button type="submit">Create</button>
      <ErrorBox error={error} />
    </form>
  );
}
