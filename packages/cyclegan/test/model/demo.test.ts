import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDevice } from '../../../../test/helpers/device.js';
import { runDemo } from '../../src/cli-demo.js';

// The whole demo, as `npm run demo` runs it: ~90 s warm on a quiet 2-core machine, 161 s measured from a
// cold shader cache (MESA_SHADER_CACHE_DIR empty) under load 5–7. The budget leaves ~4× that.
const DEMO_BUDGET_MS = 600_000;

describe('demo (the README main job)', () => {
  it(
    'learns the colour mapping: translations move most of the way to the target domain',
    async () => {
      const out = await mkdtemp(join(tmpdir(), 'cg-demo-'));
      try {
        const r = await runDemo(['--out', out], await testDevice(), true);
        // Metric: mean (blue − red) of held-out translations, as a fraction of the A→B gap (0 = unchanged, 1 = target).
        expect(r.progressAtoB).toBeGreaterThan(0.6);
        expect(r.progressBtoA).toBeGreaterThan(0.6);
        expect(r.blueness.real_A).toBeLessThan(0);
        expect(r.blueness.real_B).toBeGreaterThan(0);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
    DEMO_BUDGET_MS,
  );
});
