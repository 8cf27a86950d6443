import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `pnpm test:browser`: the built app (apps/web/dist) in real browsers, compared with Node. The packages are
// resolved through their package.json exports (dist), the same build the app was bundled from.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/browser/**/*.test.ts'],
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 240_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
