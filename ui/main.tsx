import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { BranchInfo } from '../src/store/types.js';
import { type Client, clientFor, codeOf, messageOf, session } from './api.js';
import { BranchesView, CompareView } from './branches.js';
import { BlameView } from './history.js';
import { KeyView } from './key.js';
import { MergeView } from './merge.js';
import { ErrorBox } from './parts.js';
import { href, parse, type Route } from './route.js';
import { TreeView } from './tree.js';

/**
 * The web UI of `store serve` (docs/ARCHITECTURE.md, "Web UI"): browse and edit keys, history and blame, branches,
 * compare and merge with conflicts resolved by a person, all live through the watch stream. Everything it does goes
 * through the API with the person's token, so it shows exactly what that token may read and offers only what it
 * may write.
 */

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const [token, setToken] = useState(session.token());
  const client = useMemo(() => clientFor(token), [token]);
  const [branches, setBranches] = useState<BranchInfo[] | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [round, setRound] = useState(0);
  const hash = useHash();

  useEffect(() => {
    client.branches().then(
      (b) => {
        setBranches(b);
        setFailure(null);
      },
      (e) => {
        setBranches(null);
        setFailure(e);
      },
    );
  }, [client, round]);

  if (codeOf(failure) === 'UNAUTHORIZED') {
    return (
      <SignIn
        wrong={token !== undefined}
        onToken={(t) => {
          session.signIn(t);
          setToken(t);
        }}
      />
    );
  }
  if (failure) return <ErrorBox error={failure} />;
  if (!branches) return <p class="loading">Loading…</p>;

  const fallback = branches.find((b) => b.default)?.name ?? branches[0]?.name ?? 'main';
  const route: Route = parse(hash) ?? { view: 'tree', branch: fallback, path: '' };
  const branch = 'branch' in route ? route.branch : fallback;
  return (
    <>
      <Header
        client={client}
        branches={branches}
        branch={branch}
        route={route}
        signedIn={token !== undefined}
        onSignOut={() => {
          session.signOut();
          setToken(undefined);
        }}
      />
      <main id="main">
        <View client={client} route={route} branch={branch} onBranchesChanged={() => setRound((r) => r + 1)} />
      </main>
    </>
  );
}

function View(props: { client: Client; route: Route; branch: string; onBranchesChanged: () => void }) {
  const { client, route } = props;
  switch (route.view) {
    case 'tree':
      return <TreeView client={client} branch={route.branch} path={route.path} />;
    case 'key':
      return <KeyView client={client} branch={route.branch} k={route.key} tab={route.tab} />;
    case 'blame':
      return <BlameView client={client} branch={route.branch} path={route.path} />;
    case 'branches':
      return <BranchesView client={client} current={props.branch} onChange={props.onBranchesChanged} />;
    case 'compare':
      return <CompareView client={client} a={route.a} b={route.b} />;
    case 'merge':
      return <MergeView client={client} into={route.into} from={route.from} />;
  }
}

function Header(props: {
  client: Client;
  branches: BranchInfo[];
  branch: string;
  route: Route;
  signedIn: boolean;
  onSignOut: () => void;
}) {
  const [who, setWho] = useState<string | null>(null);
  useEffect(() => {
    props.client.me().then(
      (me) => setWho(me.auth ? me.name : null),
      () => setWho(null),
    );
  }, [props.client]);
  const [go, setGo] = useState('');
  return (
    <header>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <a class="brand" href={href({ view: 'tree', branch: props.branch, path: '' })}>
        gitstore
      </a>
      <label>
        Branch{' '}
        <select
          value={props.branch}
          onChange={(e) =>
            (location.hash = href({ view: 'tree', branch: (e.target as HTMLSelectElement).value, path: '' }))
          }
        >
          {props.branches.map((b) => (
            <option key={b.name} value={b.name}>
              {b.name}
            </option>
          ))}
        </select>
      </label>
      <form
        aria-label="Go to"
        onSubmit={(e) => {
          e.preventDefault();
          const path = go.replace(/^\/+|\/+$/g, '');
          // A path ending in `/` is a directory; otherwise it is looked up as a key, and shown as a directory if it is one.
          location.hash = go.endsWith('/')
            ? href({ view: 'tree', branch: props.branch, path })
            : href({ view: 'key', branch: props.branch, key: path, tab: 'value' });
        }}
      >
        <label>
          Go to key or prefix{' '}
          <input value={go} placeholder="vm/web1/" onInput={(e) => setGo((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <nav aria-label="Views">
        <a href={href({ view: 'tree', branch: props.branch, path: '' })}>Keys</a>
        <a href={href({ view: 'branches' })}>Branches</a>
      </nav>
      {props.signedIn && (
        <span class="who">
          {who ?? ''}{' '}
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </span>
      )}
    </header>
  );
}

function SignIn({ wrong, onToken }: { wrong: boolean; onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(
    wrong ? 'That token is not valid: unknown, revoked or expired.' : null,
  );
  return (
    <main id="main" class="signin">
      <h1>gitstore</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await clientFor(token.trim()).branches();
            onToken(token.trim());
          } catch (err) {
            setError(
              codeOf(err) === 'UNAUTHORIZED' ? 'That token is not valid: unknown, revoked or expired.' : messageOf(err),
            );
          }
        }}
      >
        <p>This store needs a token. Ask its administrator for one (`store token create`).</p>
        <label>
          Token{' '}
          <input
            type="password"
            required
            autocomplete="off"
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Sign in</button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

render(<App />, document.getElementById('app')!);
