import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ListEntry } from '../src/store/types.js';
import { type Client, codeOf } from './api.js';
import { ErrorBox, PathBar, useLoad, useWatch } from './parts.js';
import { baseName, href } from './route.js';

/** Row height in pixels: the list draws only the rows in view, so a directory of 100,000 keys stays fast. */
const ROW = 30;
/** Rows drawn beyond the visible ones, above and below, so a fast scroll does not show blanks. */
const OVERSCAN = 10;

/** One directory of a branch: its entries (live), a filter by name, and a new key where the token may write. */
export function TreeView({ client, branch, path }: { client: Client; branch: string; path: string }) {
  const listing = useLoad(() => client.list(path, { branch }), [client, branch, path]);
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
            {entries.length} of {listing.data.entries.length} entries
          </span>
        )}
      </div>
      {listing.error && codeOf(listing.error) !== 'NOT_FOUND' ? <ErrorBox error={listing.error} /> : null}
      {codeOf(listing.error) === 'NOT_FOUND' && <p class="muted">Nothing here yet.</p>}
      {listing.data && <VirtualList branch={branch} entries={entries} changed={changed} />}
      {canWrite && <NewKey client={client} branch={branch} dir={path} />}
    </section>
  );
}

function VirtualList(props: { branch: string; entries: ListEntry[]; changed: Map<string, number> }) {
  const { branch, entries, changed } = props;
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
  const last = Math.min(entries.length, Math.ceil((top + height) / ROW) + OVERSCAN);

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
      {entries.length === 0 && <p class="muted">No entries.</p>}
      <ul aria-label={`${entries.length} entries`} style={{ height: `${entries.length * ROW}px` }}>
        {entries.slice(first, last).map((e, i) => {
          const index = first + i;
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
