import { useState } from 'preact/hooks';
import type { BranchInfo, ValidationReport } from '../src/store/types.js';
import { type Client, shortId } from './api.js';
import { ConfirmButton, ErrorBox, KeyLink, useLoad, Violations } from './parts.js';
import { href } from './route.js';

/** Branches: create one from any revision, delete one, and pick two to compare or merge. */
export function BranchesView({ client, current, onChange }: { client: Client; current: string; onChange: () => void }) {
  const branches = useLoad(() => client.branches(), [client]);
  const me = useLoad(() => client.me(), [client]);
  const [error, setError] = useState<unknown>(null);
  const [checked, setChecked] = useState<{ branch: string; report: ValidationReport } | null>(null);
  const list: BranchInfo[] = branches.data ?? [];
  const names = list.map((b) => b.name);
  const [a, setA] = useState(current);
  const [b, setB] = useState('');
  const other = b || names.find((n) => n !== a) || a;
  const refresh = () => {
    branches.reload();
    onChange();
  };
  return (
    <section aria-label="Branches">
      <h2>Branches</h2>
      <ErrorBox error={branches.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Branch</th>
            <th scope="col">Head</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {list.map((br) => (
            <tr key={br.name}>
              <td>
                <a href={href({ view: 'tree', branch: br.name, path: '' })}>{br.name}</a>
                {br.default && <span class="badge">default</span>}
              </td>
              <td>{shortId(br.head)}</td>
              <td class="actions">
                <button
                  type="button"
                  onClick={() => {
                    setError(null);
                    setChecked(null);
                    client
                      .validate({ branch: br.name })
                      .then((report) => setChecked({ branch: br.name, report }), setError);
                  }}
                >
                  Validate
                </button>
                {!br.default && me.data?.admin && (
                  <ConfirmButton
                    label="Delete"
                    confirm={`Delete branch ${br.name}`}
                    danger
                    onConfirm={() => client.deleteBranch(br.name).then(refresh)}
                    onError={setError}
                  />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorBox error={error} />
      {checked && <Validation branch={checked.branch} report={checked.report} />}
      <NewBranch client={client} from={current} onCreated={refresh} />
      <form class="pair" aria-label="Compare or merge" onSubmit={(e) => e.preventDefault()}>
        <h2>Compare or merge</h2>
        <label>
          Branch{' '}
          <select value={a} onChange={(e) => setA((e.target as HTMLSelectElement).value)}>
            {names.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <label>
          and{' '}
          <select value={other} onChange={(e) => setB((e.target as HTMLSelectElement).value)}>
            {names.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <a class="button" href={href({ view: 'compare', a, b: other })}>
          Compare
        </a>
        <a class="button" href={href({ view: 'merge', into: a, from: other })}>
          Merge {other} into {a}…
        </a>
      </form>
    </section>
  );
}

/** A branch held against its own schemas (`GET /v1/branches/{b}/validate`): valid, or each violation. */
function Validation({ branch, report }: { branch: string; report: ValidationReport }) {
  const { commit, patterns, checked, violations } = report;
  const at = `${branch} at ${shortId(commit)}`;
  return (
    <section class={report.valid ? 'validation' : 'validation refused'} aria-label={`Validation of ${branch}`}>
      {report.valid ? (
        <p role="status">
          {patterns.length === 0
            ? `${at} declares no schemas (.store/schema.json): nothing to check.`
            : `${at} is valid: ${checked} value${checked === 1 ? '' : 's'} checked against ${patterns.length} schema pattern${patterns.length === 1 ? '' : 's'}.`}
        </p>
      ) : (
        <>
          <p class="error" role="alert">
            {at} breaks its schemas (.store/schema.json): {violations.length} violation
            {violations.length === 1 ? '' : 's'}.
          </p>
          <Violations violations={violations} branch={branch} />
        </>
      )}
    </section>
  );
}

function NewBranch({ client, from, onCreated }: { client: Client; from: string; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [rev, setRev] = useState(from);
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      aria-label="New branch"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await client.createBranch(name, { from: rev });
          setName('');
          onCreated();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h2>New branch</h2>
      <label>
        Name <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        From (a branch, commit id or revision such as main~3){' '}
        <input required value={rev} onInput={(e) => setRev((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Create branch</button>
      <ErrorBox error={error} />
    </form>
  );
}

/** The keys that differ between two branches. */
export function CompareView({ client, a, b }: { client: Client; a: string; b: string }) {
  const diff = useLoad(() => client.diff(a, b, { branch: a }), [client, a, b]);
  return (
    <section aria-label="Compare">
      <h2>
        {a} → {b}
      </h2>
      <ErrorBox error={diff.error} />
      {diff.data && diff.data.length === 0 && <p>No key differs.</p>}
      {diff.data && diff.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">In {b}</th>
            </tr>
          </thead>
          <tbody>
            {diff.data.map((c) => (
              <tr key={c.key}>
                <td>
                  <KeyLink branch={c.kind === 'deleted' ? a : b} k={c.key} />
                </td>
                <td>{c.kind}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        <a class="button" href={href({ view: 'merge', into: a, from: b })}>
          Merge {b} into {a}…
        </a>
      </p>
    </section>
  );
}
