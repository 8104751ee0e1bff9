// Builds the web UI (ui/) into dist/ui: one ES module with Preact and the store's own HTTP client bundled in, the
// page and its stylesheet. Run by `npm run build`; `store serve` serves the result (server/ui.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/ui');
fs.rmSync(out, { recursive: true, force: true });
await build({
  input: path.join(root, 'ui/main.tsx'),
  platform: 'browser',
  logLevel: 'warn',
  // The client's modules import node built-ins for functions the UI never calls: without side effects assumed, those
  // imports go with the code that used them, and a browser never sees a `node:` import (test/ui-build.test.ts).
  treeshake: { moduleSideEffects: false },
  external: [/^node:/],
  resolve: { extensionAlias: { '.js': ['.ts', '.tsx', '.js'] } },
  // JSX as ui/tsconfig.json says: Preact's automatic runtime.
  tsconfig: path.join(root, 'ui/tsconfig.json'),
  output: { dir: out, format: 'esm', entryFileNames: 'app.js', minify: true },
});
for (const file of ['index.html', 'style.css']) fs.copyFileSync(path.join(root, 'ui', file), path.join(out, file));
