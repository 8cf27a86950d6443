import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string, file = 'index.ts') =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url));

// Tests run against the TypeScript sources, so `pnpm test` never tests a stale build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@cg\/tensor-core\/node$/, replacement: src('tensor-core', 'platform/node.ts') },
      { find: /^@cg\/tensor-core\/platform$/, replacement: src('tensor-core', 'platform/node.ts') },
      { find: /^@cg\/tensor-core\/browser$/, replacement: src('tensor-core', 'platform/browser.ts') },
      { find: /^@cg\/tensor-core$/, replacement: src('tensor-core') },
      { find: /^@cg\/kernels-wgsl$/, replacement: src('kernels-wgsl') },
      { find: /^@cg\/autograd$/, replacement: src('autograd') },
      { find: /^@cg\/cyclegan\/node$/, replacement: src('cyclegan', 'node.ts') },
      { find: /^@cg\/cyclegan$/, replacement: src('cyclegan') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/browser/**'],
    // One software GPU adapter uses both cores; test files run one at a time.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
