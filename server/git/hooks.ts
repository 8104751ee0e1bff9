import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The hooks git runs for pushes to `store serve`: `git-hooks/` at the package's root, shipped in the npm package
 * beside `bin/`. Its `pre-receive` runs `bin/store.js git-hook pre-receive` (cli/commands/git-hook.ts).
 *
 * This module runs from the TypeScript sources (tests), from tsc's dist/server/git/ and from the CLI bundle in
 * dist/bundle/, each at another depth below the root: the directory is found by walking up from here.
 */
export function findHooksDir(from = fileURLToPath(import.meta.url)): string | null {
  let dir = path.dirname(from);
  for (;;) {
    const candidate = path.join(dir, 'git-hooks');
    if (fs.existsSync(path.join(candidate, 'pre-receive')) && fs.existsSync(path.join(dir, 'bin', 'store.js'))) {
      return candidate;
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Whether the hook can run: git skips (with only a hint) a hook file that is not executable. */
export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
