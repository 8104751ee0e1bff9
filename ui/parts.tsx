import { useEffect, useRef, useState } from 'preact/hooks';
import type { Violation } from '../src/errors.js';
import { type Client, hexPreview, messageOf, type Shown, show, violationsOf } from './api.js';
import { type DiffLine, diffLines } from './diff.js';
import { href } from './route.js';

/**
 * An error as a person reads it, announced to screen readers. A value refused by the branch's schemas
 * (INVALID_VALUE) lists each violation: the key, where in the value, what is wrong, and the rule.
 */
export function ErrorBox({ error, id }: { error: unknown; id?: string }) {
  const box = useRef<HTMLElement>(null);
  const invalid = error ? violationsOf(error) : null;
  // A list of violations may start below a long editor: bring it into view.
  useEffect(() => {
    if (invalid) box.current?.scrollIntoView({ block: 'nearest' });
  }, [error]);
  if (!error) return null;
  if (invalid) {
    const n = invalid.total;
    return (
      <section ref={box} class="refused" id={id} role="alert" aria-label="Refused by the schemas">
        <p class="error">
          Refused: {n === 1 ? 'a value breaks' : `${n} violations of`} the branch’s schemas (.store/schema.json).
          Nothing was written.
        </p>
        <Violations violations={invalid.violations} total={n} />
      </section>
    );
  }
  return (
    <p class="error" id={id} role="alert">
      {messageOf(error)}
    </p>
  );
}

/**
 * Violations of a branch's schemas, one row each: the key (a link when `branch` is given), the JSON pointer of the
 * offending part of its value, the message, and the rule that failed with the pattern whose schema it is.
 */
export function Violations({
  violations,
  total,
  branch,
}: {
  violations: Violation[];
  total?: number;
  branch?: string;
}) {
  const more = (total ?? violations.length) - violations.length;
  return (
    <>
      <table class="violations">
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Where in the value</th>
            <th scope="col">Problem</th>
            <th scope="col">Rule</th>
          </tr>
        </thead>
        <tbody>
          {violations.map((v, i) => (
            <tr key={i}>
              <td class="mono">{branch ? <KeyLink branch={branch} k={v.key} /> : v.key}</td>
              <td>{v.pointer ? <code>{v.pointer}</code> : <span class="muted">the whole value</span>}</td>
              <td>{v.message}</td>
              <td>
                <code>{v.rule}</code> <span class="muted">of the schema for</span> <code>{v.pattern}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {more > 0 && <p class="muted">… and {more} more, not listed.</p>}
    </>
  );
}

/** Runs `load` when its inputs change; the result, the error, and a way to load again. */
export function useLoad<T>(load: () => Promise<T>, inputs: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...inputs, round]);
  return { ...state, reload: () => setRound((r) => r + 1) };
}

/**
 * A button that asks once more before it acts (deleting a key or a branch, reverting a commit): the second button
 * says exactly what will happen, and Cancel (or Escape) takes it back.
 */
export function ConfirmButton(props: {
  label: string;
  confirm: string;
  /** What happens once confirmed; its failure goes to `onError`. */
  onConfirm: () => Promise<unknown>;
  onError: (e: unknown) => void;
  danger?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) yes.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class={props.danger ? 'danger' : ''} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <fieldset class="confirm" onKeyDown={(e) => e.key === 'Escape' && setAsking(false)}>
      <legend class="visually-hidden">Confirm</legend>
      <button
        type="button"
        ref={yes}
        class="danger"
        onClick={() => {
          setAsking(false);
          props.onConfirm().catch(props.onError);
        }}
      >
        {props.confirm}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </fieldset>
  );
}

/** The path of a directory or key as links to each directory above it. */
export function PathBar({ branch, path }: { branch: string; path: string }) {
  const parts = path ? path.split('/') : [];
  return (
    <nav class="pathbar" aria-label="Path">
      <a href={href({ view: 'tree', branch, path: '' })}>{branch}</a>
      {parts.map((part, i) => {
        const to = parts.slice(0, i + 1).join('/');
        const last = i === parts.length - 1;
        return (
          <span key={to}>
            <span aria-hidden="true"> / </span>
            {last ? (
              <span aria-current="page">{part}</span>
            ) : (
              <a href={href({ view: 'tree', branch, path: to })}>{part}</a>
            )}
          </span>
        );
      })}
    </nav>
  );
}

/** A value shown as what it is: text, pretty JSON, or a hex preview of bytes. */
export function ValueBlock({ value, label }: { value: Uint8Array | null; label: string }) {
  if (value === null) return <p class="muted">(no value)</p>;
  const shown: Shown = show(value);
  if (shown.kind === 'binary') {
    return (
      <figure aria-label={`${label}, ${value.length} bytes, hex`}>
        <pre class="value binary">{hexPreview(value)}</pre>
      </figure>
    );
  }
  return (
    <figure aria-label={label}>
      <pre class="value">{shown.kind === 'json' ? shown.pretty : shown.text}</pre>
    </figure>
  );
}

/** Two values as a line diff (or side by side when they are bytes or too long to diff). */
export function Diff({ before, after }: { before: Uint8Array | null; after: Uint8Array | null }) {
  const a = before === null ? null : show(before);
  const b = after === null ? null : show(after);
  // JSON is compared pretty-printed, a field to a line: a one-line document would otherwise differ as a whole.
  const textOf = (s: Shown | null) =>
    s === null ? '' : s.kind === 'binary' ? null : s.kind === 'json' && b?.kind === a?.kind ? s.pretty : s.text;
  const [ta, tb] = [textOf(a), textOf(b)];
  const lines: DiffLine[] | null = ta === null || tb === null ? null : diffLines(ta, tb);
  if (!lines) {
    return (
      <div class="sides">
        <ValueBlock value={before} label="Before" />
        <ValueBlock value={after} label="After" />
      </div>
    );
  }
  return (
    <figure aria-label="Differences, line by line">
      <pre class="diff">
        {lines.map((l, i) => (
          <div key={i} class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>
            <span aria-hidden="true">{l.op}</span> {l.text}
          </div>
        ))}
      </pre>
    </figure>
  );
}

/** A key's name as a link to it. */
export const KeyLink = ({ branch, k }: { branch: string; k: string }) => (
  <a href={href({ view: 'key', branch, key: k, tab: 'value' })} title={k}>
    {k}
  </a>
);

/**
 * Calls `onCommit` for every commit written to `branch` at or below `prefix` while the component is shown, through
 * the server's event stream (the client reconnects nothing: a view that is shown again opens a new watch).
 */
export function useWatch(
  client: Client,
  branch: string,
  prefix: string,
  onCommit: (keys: string[], commit: string) => void,
) {
  const callback = useRef(onCommit);
  callback.current = onCommit;
  useEffect(() => {
    let closed = false;
    let close = () => {};
    client
      .watch({ branch, prefix })
      .then(async (watch) => {
        close = () => watch.close();
        if (closed) return close();
        for await (const c of watch.commits()) {
          callback.current(
            c.events.map((e) => e.key),
            c.commit,
          );
        }
      })
      .catch(() => {
        // A prefix this token may not watch, or a server going away: the view simply is not live.
      });
    return () => {
      closed = true;
      close();
    };
  }, [client, branch, prefix]);
}
