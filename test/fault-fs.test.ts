import { describe, expect, it } from 'vitest';
import { FaultFs } from './support/fault-fs.js';

/** The fault file system itself (test/support/fault-fs.ts): what survives its power cut, and what does not. */

const call = <T>(fn: (done: (e: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v as T))));

async function writeFile(f: FaultFs, path: string, text: string, sync: boolean): Promise<void> {
  const fd = await call<number>((d) => f.open(path, 'w', 0o666, d));
  const data = new TextEncoder().encode(text);
  await call((d) => f.write(fd, data, 0, data.length, null, d));
  if (sync) await call((d) => f.fsync(fd, d));
  await call((d) => f.close(fd, d));
}

async function syncDir(f: FaultFs, path: string): Promise<void> {
  const fd = await call<number>((d) => f.open(path, 'r', 0o666, d));
  await call((d) => f.fsync(fd, d));
  await call((d) => f.close(fd, d));
}

const read = (fs: ReturnType<FaultFs['image']>, path: string) =>
  fs.existsSync(path) ? (fs.readFileSync(path, 'utf8') as string) : null;

describe('the fault file system', () => {
  it('keeps after a power cut only synced data under synced directory entries', async () => {
    const f = new FaultFs();
    await f.promises.mkdir('/d', { recursive: true });
    await syncDir(f, '/');
    await writeFile(f, '/d/synced', 'kept', true);
    await writeFile(f, '/d/unsynced', 'lost', false);
    // A rename not followed by a sync of its directory is lost: the old name comes back.
    await writeFile(f, '/d/tmp', 'renamed', true);
    await syncDir(f, '/d');
    await writeFile(f, '/d/no-entry', 'data but no entry', true);
    await f.promises.rename('/d/tmp', '/d/final');
    const disk = f.image();
    expect(read(disk, '/d/synced')).toBe('kept');
    expect(read(disk, '/d/unsynced')).toBe(''); // its entry is durable, its data never was
    expect(read(disk, '/d/no-entry')).toBeNull();
    expect(read(disk, '/d/tmp')).toBe('renamed');
    expect(read(disk, '/d/final')).toBeNull();
    // Once the directory is synced, the rename holds; an overwrite not synced keeps the old data.
    await syncDir(f, '/d');
    await writeFile(f, '/d/synced', 'new but not synced', false);
    const later = f.image();
    expect(read(later, '/d/final')).toBe('renamed');
    expect(read(later, '/d/tmp')).toBeNull();
    expect(read(later, '/d/synced')).toBe('kept');
  });

  it('fails the n-th change and everything after it, reads included', async () => {
    const f = new FaultFs();
    await writeFile(f, '/a', 'a', true); // open, write, fsync: changes 1-3
    f.cutAt(5);
    // open (4) passes, write (5) fails.
    await expect(writeFile(f, '/b', 'b', false)).rejects.toMatchObject({ code: 'EIO' });
    await expect(f.promises.readFile('/a')).rejects.toMatchObject({ code: 'EIO' });
    expect(f.off).toBe(true);
    expect(f.log).toEqual(['open /a w', 'write /a 1 bytes', 'fsync /a', 'open /b w']);
  });
});
