import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every answer of a store server in the tests is checked against its OpenAPI document.
    setupFiles: ['test/setup/validate-responses.ts'],
    // Timeouts only catch hangs: generous, so that a loaded machine (two cores shared with other work) never fails a
    // test that would pass given the time.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Four workers on two cores: much of a test's time is spent waiting (lock back-off between writer processes,
    // git and store child processes, timers), and on a loaded machine the suite gets a bigger share of the CPU.
    // Measured on twelve files at load 10-20: 2 forks 489 s, 2 threads 629 s (threads no better), 3 forks 355 s,
    // 4 forks 324 s. Whole suite beside two CPU-bound processes: 4 forks 436 s; 6 forks 429 s, and the two-process
    // writer test then took over 180 s: more workers only add contention.
    maxWorkers: 4,
    tags: [
      {
        name: 'slow',
        description:
          'A long simulation (a year of writes, a thousand concurrent clients): left out of `npm test` (which runs ' +
          "--tags-filter='!slow'), run by `npm run test:slow` and CI.",
        timeout: 1_800_000,
      },
    ],
  },
});
