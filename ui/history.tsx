import { useState } from 'preact/hooks';
import type { CommitInfo } from '../src/history/commit-info.js';
import { type Client, codeOf, shortId, when } from './api.js';
import { ConfirmButton, Diff, ErrorBox, KeyLink, PathBar, useLoad, ValueBlock } from './parts.js';

/** A key's value at a commit (null: it had none there). */
async function valueAt(client: Client, branch: string, key: string, at: string): Promise<Uint8Array | null> {
  try {
    return (await client.read(key, { branch, at })).value;
  } catch (e) {
    if (codeOf(e) === 'NOT_FOUND') return null;
    throw e;
  }
}

/**
 * A key's history: the commits that changed it (author, time, message), the value at any of them, and a diff
 * against the version before it or any other listed version; a commit can be reverted.
 */
export function HistoryPanel(props: { client: Client; branch: string; k: string; canWrite: boolean }) {
  const { client, branch, k } = props;
  const log = useLoad(() => client.log({ branch, path: k, limit: 100 }), [client, branch, k]);
  const [selected, setSelected] = useState<string | null>(null);
  const [against, setAgainst] = useState<string>('previous');
  const [error, setError] = useState<unknown>(null);
  const commits = log.data?.commits ?? [];
  const at = selected ?? commits[0]?.id ?? null;
  const index = commits.findIndex((c) => c.id === at);
  const other = against === 'previous' ? (commits[index + 1]?.id ?? null) : against;
  const values = useLoad(
    async () =>
      at === null
        ? null
        : {
            value: await valueAt(client, branch, k, at),
            before: other === null ? null : await valueAt(client, branch, k, other),
          },
    [client, branch, k, at, other],
  );

  if (log.error) return <ErrorBox error={log.error} />;
  if (!log.data) return <p class="muted">Loading…</p>;
  return (
    <div class="history">
      <table>
        <caption>Commits that changed {k}</caption>
        <thead>
          <tr>
            <th scope="col">Commit</th>
            <th scope="col">Message</th>
            <th scope="col">Author</th>
            <th scope="col">Time</th>
            {props.canWrite && <th scope="col">Revert</th>}
          </tr>
        </thead>
        <tbody>
          {commits.map((c) => (
            <tr key={c.id} class={c.id === at ? 'selected' : ''}>
              <td>
                <button type="button" class="link" aria-pressed={c.id === at} onClick={() => setSelected(c.id)}>
                  {shortId(c.id)}
                </button>
              </td>
              <td>{c.subject}</td>
              <td>{c.author.name}</td>
              <td>{when(c.author.time)}</td>
              {props.canWrite && (
                <td>
                  <ConfirmButton
                    label="Revert"
                    confirm={`Revert ${shortId(c.id)}`}
                    onConfirm={() => client.revert(c.id, { branch }).then(log.reload)}
                    onError={setError}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorBox error={error} />
      {at && (
        <div class="at">
          <h2>At {shortId(at)}</h2>
          {values.data && <ValueBlock value={values.data.value} label={`Value at ${shortId(at)}`} />}
          <label>
            Compare with{' '}
            <select value={against} onChange={(e) => setAgainst((e.target as HTMLSelectElement).value)}>
              <option value="previous">the version before</option>
              {commits
                .filter((c) => c.id !== at)
                .map((c: CommitInfo) => (
                  <option key={c.id} value={c.id}>
                    {shortId(c.id)} {c.subject}
                  </option>
                ))}
            </select>
          </label>
          {values.data && other !== null && <Diff before={values.data.before} after={values.data.value} />}
          {other === null && <p class="muted">This is the first version.</p>}
          <ErrorBox error={values.error} />
        </div>
      )}
    </div>
  );
}

/** For every key at or below a directory, the last commit that changed it. */
export function BlameView({ client, branch, path }: { client: Client; branch: string; path: string }) {
  const blame = useLoad(() => client.blame(path, { branch }), [client, branch, path]);
  return (
    <section aria-label="Blame">
      <PathBar branch={branch} path={path} />
      <h2>Blame of {path || 'the top'}</h2>
      <ErrorBox error={blame.error} />
      {blame.data && (
        <table>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Last changed by</th>
              <th scope="col">Message</th>
              <th scope="col">Time</th>
              <th scope="col">Commit</th>
            </tr>
          </thead>
          <tbody>
            {blame.data.map((line) => (
              <tr key={line.key}>
                <td>
                  <KeyLink branch={branch} k={line.key} />
                </td>
                <td>{line.commit.author.name}</td>
                <td>{line.commit.subject}</td>
                <td>{when(line.commit.author.time)}</td>
                <td>{shortId(line.commit.id)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
