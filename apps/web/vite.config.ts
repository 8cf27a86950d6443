import { defineConfig } from 'vite';

// The packages are consumed from their built dist/ through their package.json `exports`, exactly as an
// outside user's bundler sees them (`pnpm web` / `pnpm web:build` run `tsc -b` first).
export default defineConfig({
  // Relative asset URLs: the built site works from any folder of any static host.
  base: './',
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
