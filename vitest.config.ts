import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every answer of a store server in the tests is checked against its OpenAPI document.
    setupFiles: ['test/setup/validate-responses.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The suite spawns git and store processes; two cores, so keep workers few.
    maxWorkers: 2,
  },
});
