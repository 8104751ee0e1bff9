import { afterEach, describe, expect, it, vi } from 'vitest';
import { conflict, StoreError } from '../src/errors.js';
import { retryTransaction } from '../src/store/transaction.js';

/** A transaction whose commit conflicts `conflicts` times, then succeeds; `began` counts the attempts. */
function flaky(conflicts: number) {
  const attempts = { began: 0, aborted: 0 };
  const begin = async () => {
    attempts.began++;
    return {
      abort: async () => {
        attempts.aborted++;
      },
      commit: async () => {
        if (attempts.began <= conflicts) throw conflict('another writer won', []);
        return { commit: 'c'.repeat(40) };
      },
    };
  };
  return { attempts, begin };
}

describe('retryTransaction', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('pauses before each retry, for less than 2^(attempt + 1) ms and less than 100 ms', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { attempts, begin } = flaky(8);
    const done = retryTransaction(begin, async () => 'v', 10);
    // The caps, attempt by attempt: 2, 4, 8, 16, 32, 64, then 100 ms; the longest pause is a ms below each.
    for (const cap of [2, 4, 8, 16, 32, 64, 100, 100]) {
      const before = attempts.began;
      await vi.advanceTimersByTimeAsync(cap - 2);
      expect(attempts.began).toBe(before); // still pausing
      await vi.advanceTimersByTimeAsync(1);
      expect(attempts.began).toBe(before + 1);
    }
    await expect(done).resolves.toEqual({ value: 'v', commit: 'c'.repeat(40) });
    expect(attempts.began).toBe(9);
  });

  it('gives up with the conflict after `retries` retries, and never retries any other error', async () => {
    const { attempts, begin } = flaky(100);
    await expect(retryTransaction(begin, async () => 1, 3)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(attempts.began).toBe(4);

    const other = flaky(0);
    await expect(
      retryTransaction(other.begin, async () => {
        throw new StoreError('NOT_FOUND', 'gone');
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(other.attempts).toEqual({ began: 1, aborted: 1 });
  });
});
