import { useEffect, useState } from 'preact/hooks';
import { type Client, codeOf, formatSize, messageOf, shortId, show, violationsOf } from './api.js';
import { HistoryPanel } from './history.js';
import { ConfirmButton, ErrorBox, PathBar, useLoad, useWatch, ValueBlock } from './parts.js';
import { href, parentOf } from './route.js';

type Read = { value: Uint8Array; oid: string; commit: string };

/** One key: its value (viewed, edited, replaced, deleted) or its history. */
export function KeyView(props: { client: Client; branch: string; k: string; tab: 'value' | 'history' }) {
  const { client, branch, k, tab } = props;
  const rights = useLoad(() => client.me({ branch, paths: [k] }), [client, branch, k]);
  const canWrite = rights.data?.paths[k]?.write ?? false;
  return (
    <section class="key" aria-label="Key">
      <PathBar branch={branch} path={k} />
      <div class="tabs" role="tablist">
        <a role="tab" aria-selected={tab === 'value'} href={href({ view: 'key', branch, key: k, tab: 'value' })}>
          Value
        </a>
        <a role="tab" aria-selected={tab === 'history'} href={href({ view: 'key', branch, key: k, tab: 'history' })}>
          History
        </a>
      </div>
      {tab === 'value' ? (
        <ValuePanel client={client} branch={branch} k={k} canWrite={canWrite} />
      ) : (
        <HistoryPanel client={client} branch={branch} k={k} canWrite={rights.data?.paths[k]?.write ?? false} />
      )}
    </section>
  );
}

function ValuePanel({ client, branch, k, canWrite }: { client: Client; branch: string; k: string; canWrite: boolean }) {
  const read = useLoad<Read>(() => client.read(k, { branch }), [client, branch, k]);
  const [editing, setEditing] = useState<string | null>(null);
  const [stale, setStale] = useState<Read | null>(null);
  const [changedBy, setChangedBy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setEditing(null);
    setStale(null);
    setError(null);
  }, [branch, k]);

  // Another client's write to this key: shown at once when only viewing; while editing, the save will show both.
  useWatch(client, branch, k, (keys, commit) => {
    if (!keys.includes(k) || commit === read.data?.commit) return;
    setChangedBy(commit);
    if (editing === null) read.reload();
  });

  if (read.error) {
    return codeOf(read.error) === 'NOT_FOUND' ? (
      <p class="muted">This key has no value on {branch}.</p>
    ) : (
      <ErrorBox error={read.error} />
    );
  }
  if (!read.data) return <p class="muted">Loading…</p>;
  const { value, oid, commit } = read.data;
  const shown = show(value);
  // The editor's text is what the schemas refused: marked invalid, and described by the list of violations.
  const refused = violationsOf(error) !== null;

  const save = async (text: string | Uint8Array, ifMatch: string) => {
    setError(null);
    if (typeof text === 'string' && shown.kind === 'json') {
      try {
        JSON.parse(text);
      } catch (e) {
        setError(new Error(`not saved: the value is JSON and this is not valid JSON (${messageOf(e)})`));
        return;
      }
    }
    try {
      await client.set(k, text, { branch, ifMatch });
      setEditing(null);
      setStale(null);
      setChangedBy(null);
      read.reload();
    } catch (e) {
      // Anything else (a value the branch's schemas refuse, INVALID_VALUE, among them) is shown below the editor,
      // which keeps the person's text to fix.
      if (codeOf(e) !== 'PRECONDITION_FAILED') return setError(e);
      // Someone changed the key since it was read: show both versions and let the person choose.
      try {
        setStale(await client.read(k, { branch }));
      } catch (again) {
        setError(again);
      }
    }
  };

  return (
    <div>
      <p class="meta">
        {formatSize(value.length)} · {shown.kind} · blob {shortId(oid)} · at commit{' '}
        <a href={href({ view: 'key', branch, key: k, tab: 'history' })}>{shortId(commit)}</a>
        {changedBy && (
          <span class="badge" role="status">
            changed by another client ({shortId(changedBy)})
          </span>
        )}
      </p>
      {stale && editing !== null ? (
        <StaleEdit
          mine={editing}
          theirs={stale}
          onKeepMine={(text) => save(text, stale.oid)}
          onTakeTheirs={() => {
            setEditing(null);
            setStale(null);
            read.reload();
          }}
        />
      ) : editing !== null ? (
        <form
          class="editor"
          onSubmit={(e) => {
            e.preventDefault();
            void save(editing, oid);
          }}
        >
          <label>
            Value of {k}
            <textarea
              rows={16}
              value={editing}
              aria-invalid={refused ? 'true' : undefined}
              aria-describedby={refused ? 'save-error' : undefined}
              onInput={(e) => setEditing((e.target as HTMLTextAreaElement).value)}
            />
          </label>
          <div class="buttons">
            <button type="submit">Save</button>
            <button
              type="button"
              onClick={() => {
                setEditing(null);
                setError(null);
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <ValueBlock value={value} label={`Value of ${k}`} />
          <div class="buttons">
            <Download name={k} value={value} />
            {canWrite && shown.kind !== 'binary' && (
              <button type="button" onClick={() => setEditing(shown.text)}>
                Edit
              </button>
            )}
            {canWrite && <Upload onFile={(bytes) => save(bytes, oid)} />}
            {canWrite && (
              <ConfirmButton
                label="Delete"
                confirm={`Delete ${k}`}
                danger
                onConfirm={() =>
                  client.delete(k, { branch, ifMatch: oid }).then(() => {
                    location.hash = href({ view: 'tree', branch, path: parentOf(k) });
                  })
                }
                onError={setError}
              />
            )}
          </div>
        </>
      )}
      <ErrorBox error={error} id="save-error" />
    </div>
  );
}

/** A save that found the key changed: the person's version beside the current one, and a choice; never silent. */
function StaleEdit(props: {
  mine: string;
  theirs: Read;
  onKeepMine: (text: string) => void;
  onTakeTheirs: () => void;
}) {
  const [mine, setMine] = useState(props.mine);
  return (
    <section class="stale" aria-label="Conflicting edit">
      <p role="alert">
        Someone changed this key since you opened it (now commit {shortId(props.theirs.commit)}). Nothing was saved.
        Choose which version to keep.
      </p>
      <div class="sides">
        <label>
          Your version
          <textarea rows={12} value={mine} onInput={(e) => setMine((e.target as HTMLTextAreaElement).value)} />
        </label>
        <div>
          <span class="label">Their version (current)</span>
          <ValueBlock value={props.theirs.value} label="Their version" />
        </div>
      </div>
      <div class="buttons">
        <button type="button" onClick={() => props.onKeepMine(mine)}>
          Keep mine
        </button>
        <button type="button" onClick={props.onTakeTheirs}>
          Take theirs
        </button>
      </div>
    </section>
  );
}

function Download({ name, value }: { name: string; value: Uint8Array }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const made = URL.createObjectURL(new Blob([new Uint8Array(value)], { type: 'application/octet-stream' }));
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [value]);
  return url ? (
    <a class="button" href={url} download={name.split('/').pop()}>
      Download
    </a>
  ) : null;
}

function Upload({ onFile }: { onFile: (bytes: Uint8Array) => void }) {
  return (
    <label class="button">
      Replace with a file…
      <input
        type="file"
        class="visually-hidden"
        onChange={async (e) => {
          const file = (e.target as HTMLInputElement).files?.[0];
          if (file) onFile(new Uint8Array(await file.arrayBuffer()));
        }}
      />
    </label>
  );
}
