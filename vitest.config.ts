import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Timeouts only catch hangs: generous, so that a loaded machine (two cores shared with other work) never fails a
    // test that would pass given the time.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The suite spawns git and store processes; two cores, so keep workers few.
    maxWorkers: 2,
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
