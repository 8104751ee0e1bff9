import fs from 'node:fs';
import path from 'node:path';
import { memfs } from 'memfs';
import { type FsLike, type OpenOptions, openStore, type Store } from '../../src/index.js';
import { tempDir } from '../helpers.js';

/** Each way a store can be opened; the conformance suite runs every behaviour against all of them. */
export const factories: { name: string; open: (options?: Partial<OpenOptions>) => Promise<Store> }[] = [
  {
    name: 'memfs',
    open: (options = {}) =>
      openStore({ fs: memfs().fs as unknown as FsLike, dir: '/repo/store.git', create: true, ...options }),
  },
  {
    name: 'disk',
    open: (options = {}) => openStore({ fs, dir: path.join(tempDir(), 'store.git'), create: true, ...options }),
  },
];
