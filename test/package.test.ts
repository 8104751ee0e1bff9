/**
 * The package as a user gets it: `npm pack` of the built tree (dist/ from `npm run build`), installed into a fresh
 * project the way a consumer installs it, then used three ways — the library import, the `store` binary through npx,
 * and the types through tsc. Its tarball must hold only what runs. Slow (a real `npm install`), so in test:slow.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gitEnv, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version: string }>;
};

/** Runs a command that must succeed; returns its stdout. Generous timeout: it only catches a hung npm. */
function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 600_000 });
  if (r.error) throw r.error;
  expect(r.status, `${command} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('the npm package', () => {
  it('ships only what runs, installs into a fresh project, and its import, binary, git hook and types work', {
    tags: ['slow'],
  }, async () => {
    if (!fs.existsSync(path.join(root, 'dist/bundle/main.js')))
      throw new Error('dist/ is missing: run `npm run build`');
    const work = tempDir('gitstore-pack-');
    // --ignore-scripts: pack the tree as built, without `prepare` rebuilding dist/ under other tests running now.
    const name = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], root).trim();
    const tarball = path.join(work, name);

    const files = run('tar', ['-tzf', tarball], work)
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    // What runs: the entry point, its bundle, the git server's push hook, and the library with its types; the package
    // files npm always adds.
    expect(
      files
        .filter(
          (f) =>
            !/^(bin\/store\.js|git-hooks\/pre-receive|dist\/bundle\/[^/]+\.js|dist\/src\/.+\.(js|d\.ts)|dist\/ui\/(app\.js|index\.html|style\.css))$/.test(
              f,
            ),
        )
        .sort(),
    ).toEqual(['README.md', 'package.json']);
    const listed = [
      'bin/store.js',
      'git-hooks/pre-receive',
      'dist/bundle/main.js',
      'dist/src/index.js',
      'dist/ui/app.js',
      'dist/ui/index.html',
    ];
    for (const f of [...listed, 'dist/src/index.d.ts']) {
      expect(files).toContain(f);
    }

    // A fresh project installs the tarball (its dependencies from the npm cache when it has them) and @types/node,
    // which any TypeScript project on Node has: the library's types name Buffer.
    const project = path.join(work, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    const typesNode = lock.packages['node_modules/@types/node']!.version;
    run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${typesNode}`],
      project,
    );

    // The library: open a store on disk, write, read back.
    fs.writeFileSync(
      path.join(project, 'use.mjs'),
      [
        "import fs from 'node:fs';",
        "import { openStore } from 'gitstore';",
        "const store = await openStore({ fs, dir: 'store.git', create: true });",
        "await store.set('vm/1/state', 'running');",
        "console.log(await store.getText('vm/1/state'));",
        'await store.close();',
      ].join('\n'),
    );
    expect(run(process.execPath, ['use.mjs'], project)).toBe('running\n');

    // The binary, as npx finds it in the project, reading the store the library wrote.
    expect(run('npx', ['--no-install', 'store', '--version'], project).trim()).toBe(manifest.version);
    expect(run('npx', ['--no-install', 'store', '--repo', 'store.git', 'get', 'vm/1/state'], project)).toBe('running');

    // The git server's push check, from the installed package: git runs git-hooks/pre-receive (executable as
    // installed), which runs the installed binary's check; a push of an invalid key is refused with its reason.
    const installed = path.join(project, 'node_modules/gitstore');
    expect(fs.statSync(path.join(installed, 'git-hooks/pre-receive')).mode & 0o111).not.toBe(0);
    const served = spawn(
      process.execPath,
      [path.join(installed, 'bin/store.js'), 'serve', '--repo', 'store.git', '--port', '0'],
      {
        cwd: project,
        env: gitEnv,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        served.stdout!.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')).trim());
        });
        served.on('exit', (code) => reject(new Error(`store serve exited (${code})`)));
      });
      // The web UI, from the installed package.
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('/ui/app.js');
      expect((await fetch(`${url}/ui/app.js`)).status).toBe(200);
      const clone = path.join(work, 'clone');
      run('git', ['clone', '-q', `${url}/git`, clone], work);
      fs.writeFileSync(path.join(clone, 'bad\\key'), 'x');
      run('git', ['-C', clone, 'add', '-A'], work);
      run('git', ['-c', 'user.name=T', '-c', 'user.email=t@t', '-C', clone, 'commit', '-q', '-m', 'bad'], work);
      const push = spawnSync('git', ['-C', clone, 'push', 'origin', 'main'], { encoding: 'utf8', timeout: 120_000 });
      expect(push.status, push.stderr).not.toBe(0);
      expect(push.stderr).toContain('! [remote rejected] main -> main (pre-receive hook declined)');
      expect(push.stderr).toMatch(/remote: +commit [0-9a-f]{10}: invalid key "bad\\\\key"/);
    } finally {
      served.kill();
    }

    // The types: a strict NodeNext project type-checks against them, the library's own .d.ts files included.
    fs.writeFileSync(
      path.join(project, 'check.ts'),
      [
        "import fs from 'node:fs';",
        "import { openStore, type Store } from 'gitstore';",
        "export const opened: Promise<Store> = openStore({ fs, dir: 'store.git' });",
        "export const value: Promise<string> = opened.then((s) => s.getText('vm/1/state'));",
      ].join('\n'),
    );
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const tscArgs = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
    run(process.execPath, [tsc, ...tscArgs, '--target', 'es2022', '--types', 'node', 'check.ts'], project);
  });
});
