import { useEffect, useState } from 'preact/hooks';
import type { MergePreview } from '../src/store/types.js';
import { type Client, codeOf, shortId, show } from './api.js';
import { ErrorBox, useLoad, ValueBlock, Violations } from './parts.js';
import { href } from './route.js';

type Conflict = MergePreview['conflicts'][number];
type Choice = 'ours' | 'theirs' | 'base' | 'edit' | 'delete';

const decoder = new TextDecoder();
const textOf = (v: Uint8Array | null) => (v === null ? '' : decoder.decode(v));

/**
 * Merging `from` into `into`: what the merge would do, and when keys conflict, each one's base, ours and theirs
 * side by side; the person picks a side, edits, or deletes, and the merge commit carries those resolutions.
 */
export function MergeView({ client, into, from }: { client: Client; into: string; from: string }) {
  const preview = useLoad(() => client.mergePreview(from, { into }), [client, into, from]);
  const [choices, setChoices] = useState<Record<string, { choice: Choice; text: string }>>({});
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  useEffect(() => {
    const initial: typeof choices = {};
    for (const c of preview.data?.conflicts ?? []) initial[c.key] = { choice: 'ours', text: textOf(c.values.ours) };
    setChoices(initial);
  }, [preview.data]);

  if (preview.error) return <ErrorBox error={preview.error} />;
  if (!preview.data) return <p class="muted">Looking at the merge…</p>;
  const { outcome, conflicts, violations } = preview.data;
  // What the merged tree would break of the branch's schemas: the server would refuse the merge (INVALID_VALUE).
  const refused = violations.length > 0;

  const commit = async () => {
    setError(null);
    const resolutions: Record<string, Uint8Array | string | null> = {};
    for (const c of conflicts) {
      const { choice, text } = choices[c.key] ?? { choice: 'ours', text: '' };
      resolutions[c.key] = choice === 'edit' ? text : choice === 'delete' ? null : c.values[choice];
    }
    try {
      const result = await client.merge(from, { into, ...(conflicts.length ? { resolutions } : {}) });
      setDone(`${result.outcome}: ${into} is now at ${shortId(result.commit)}`);
    } catch (e) {
      setError(e);
      // The branches moved since the preview: look again, so the person decides on what is there now.
      if (codeOf(e) === 'CONFLICT') preview.reload();
    }
  };

  if (done) {
    return (
      <section aria-label="Merge">
        <p role="status">Merged. {done}</p>
        <a href={href({ view: 'tree', branch: into, path: '' })}>Browse {into}</a>
      </section>
    );
  }
  return (
    <section aria-label="Merge">
      <h2>
        Merge {from} into {into}
      </h2>
      {outcome === 'up-to-date' && (
        <p>
          {into} already has everything in {from}.
        </p>
      )}
      {outcome === 'fast-forward' && (
        <p>
          {into} has not diverged: it will move to {from}.
        </p>
      )}
      {outcome === 'merged' && !refused && <p>No key conflicts: the merge can be made as it is.</p>}
      {refused && (
        <section class="refused" id="merge-refused" aria-label="Schema violations">
          <p class="error" role="alert">
            The merge would be refused: the merged {into} would break its schemas (.store/schema.json) in{' '}
            {violations.length === 1 ? 'one place' : `${violations.length} places`}. Nothing can be written until these
            values are fixed on {from} or {into}.
          </p>
          <Violations violations={violations} />
          <button type="button" onClick={preview.reload}>
            Check again
          </button>
        </section>
      )}
      {outcome === 'conflict' && (
        <p role="alert">
          {conflicts.length} key{conflicts.length === 1 ? '' : 's'} conflict. Choose a value for each, then commit the
          merge.
        </p>
      )}
      {conflicts.map((c) => (
        <ConflictCard
          key={c.key}
          conflict={c}
          into={into}
          from={from}
          value={choices[c.key] ?? { choice: 'ours', text: textOf(c.values.ours) }}
          onChange={(v) => setChoices((old) => ({ ...old, [c.key]: v }))}
        />
      ))}
      {outcome !== 'up-to-date' && (
        <button
          type="button"
          onClick={commit}
          disabled={refused}
          aria-describedby={refused ? 'merge-refused' : undefined}
        >
          {conflicts.length ? 'Commit the merge with these resolutions' : 'Merge'}
        </button>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

function ConflictCard(props: {
  conflict: Conflict;
  into: string;
  from: string;
  value: { choice: Choice; text: string };
  onChange: (v: { choice: Choice; text: string }) => void;
}) {
  const { conflict: c, value } = props;
  const binary = [c.values.base, c.values.ours, c.values.theirs].some((v) => v !== null && show(v).kind === 'binary');
  const name = `choice-${c.key}`;
  const option = (choice: Choice, label: string, disabled = false) => (
    <label>
      <input
        type="radio"
        name={name}
        checked={value.choice === choice}
        disabled={disabled}
        onChange={() => props.onChange({ ...value, choice })}
      />{' '}
      {label}
    </label>
  );
  return (
    <fieldset class="conflict" aria-label={`Conflict on ${c.key}`}>
      <legend>
        {c.key} <span class="muted">({c.kind})</span>
      </legend>
      <div class="three">
        <div>
          <span class="label">Base</span>
          <ValueBlock value={c.values.base} label={`Base of ${c.key}`} />
        </div>
        <div>
          <span class="label">Ours ({props.into})</span>
          <ValueBlock value={c.values.ours} label={`Ours of ${c.key}`} />
        </div>
        <div>
          <span class="label">Theirs ({props.from})</span>
          <ValueBlock value={c.values.theirs} label={`Theirs of ${c.key}`} />
        </div>
      </div>
      <div class="choices" role="radiogroup" aria-label={`Resolution of ${c.key}`}>
        {option('ours', `Keep ours (${props.into})`, c.values.ours === null)}
        {option('theirs', `Take theirs (${props.from})`, c.values.theirs === null)}
        {option('base', 'Keep the base', c.values.base === null)}
        {option('edit', 'Edit', binary)}
        {option('delete', 'Delete the key')}
      </div>
      {value.choice === 'edit' && (
        <label>
          Resolved value of {c.key}
          <textarea
            rows={8}
            value={value.text}
            onInput={(e) => props.onChange({ ...value, text: (e.target as HTMLTextAreaElement).value })}
          />
        </label>
      )}
    </fieldset>
  );
}
