import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  dropStaleInstanceNormKeys,
  type HostTensor,
  readCheckpoint,
  readPth,
  readSafetensors,
} from '../../src/checkpoint/index.js';
import { expected, expectMatches, FIXTURES, fixture } from './helpers.js';

const files = expected().files;

describe('readPth on files written by torch.save', () => {
  for (const name of Object.keys(files).filter((n) => n.endsWith('.pth'))) {
    it(`${name} (${files[name].format}) matches expected.json`, () => {
      const notes: string[] = [];
      const sd = readPth(fixture(name), name, (m) => notes.push(m));
      expectMatches(sd, files[name].keys);
      if (name.startsWith('wrapped')) {
        expect(notes.join('\n')).toContain("'state_dict' entry");
        expect(notes.join('\n')).toContain("'module.' prefix");
      } else {
        expect(notes).toEqual([]);
      }
    });
  }

  it('reads a Node Buffer (fs.readFile), whose slice() is a view of the whole file, not a copy', () => {
    for (const name of ['resnet_g_zip.pth', 'resnet_g_legacy.pth', 'dtypes.safetensors']) {
      const buffer = readFileSync(new URL(name, FIXTURES));
      expect(readCheckpoint(buffer, name)).toEqual(readCheckpoint(fixture(name), name));
    }
  });

  it('reads the python-written safetensors file', () => {
    expectMatches(
      readSafetensors(fixture('dtypes.safetensors'), 'dtypes.safetensors'),
      files['dtypes.safetensors'].keys,
    );
  });

  it('zip and legacy files give identical tensors', () => {
    for (const stem of ['resnet_g', 'dtypes']) {
      expect(readPth(fixture(`${stem}_legacy.pth`), 'legacy')).toEqual(readPth(fixture(`${stem}_zip.pth`), 'zip'));
    }
  });

  it('materialises views: transposed, offset, strided and expanded tensors', () => {
    const sd = readPth(fixture('dtypes_zip.pth'), 'dtypes_zip.pth');
    const base = sd.get('base')!.data;
    const t = sd.get('transposed')!;
    expect(t.shape).toEqual([4, 3]);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) expect(t.data[i * 3 + j]).toBe(base[j * 4 + i]);
    const off = sd.get('offset_view')!.data;
    const strided = sd.get('strided_view')!.data;
    // long_vec[3:8] and long_vec[1::3] share a storage: element 4 is both off[1] and strided[1].
    expect(strided[1]).toBe(off[1]);
    const ex = sd.get('expanded')!;
    expect(ex.shape).toEqual([4, 3]);
    for (let r = 1; r < 4; r++) expect([...ex.data.subarray(r * 3, r * 3 + 3)]).toEqual([...ex.data.subarray(0, 3)]);
    expect(sd.get('scalar')).toEqual({ dtype: 'float32', shape: [], data: Float32Array.of(3.5) });
    expect(sd.get('empty')!.data.length).toBe(0);
    expect(sd.get('bn.num_batches_tracked')).toEqual({ dtype: 'int64', shape: [], data: Float32Array.of(42) });
  });

  it('readCheckpoint sniffs every fixture format', () => {
    for (const name of Object.keys(files)) {
      expectMatches(readCheckpoint(fixture(name), name), files[name].keys);
    }
  });
});

describe('dropStaleInstanceNormKeys', () => {
  it('drops the stale InstanceNorm stats of the official-style generator', () => {
    const sd = readPth(fixture('resnet_g_legacy.pth'), 'resnet_g_legacy.pth');
    const logs: string[] = [];
    const out = dropStaleInstanceNormKeys(sd, (m) => logs.push(m));
    // 3 top-level norms + 2 per block × 2 blocks + 2 upsampling norms = 9 norms × 3 buffers.
    expect(sd.size - out.size).toBe(27);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain('dropped 27');
    expect([...out.keys()].some((k) => /running_|num_batches/.test(k))).toBe(false);
    expect(out.has('model.1.weight') && out.has('model.10.conv_block.1.bias') && out.has('model.19.bias')).toBe(true);
    expect([...out.keys()]).toEqual([...sd.keys()].filter((k) => out.has(k)));
  });

  it('keeps BatchNorm statistics and logs nothing when nothing is dropped', () => {
    const t = { dtype: 'float32' as const, shape: [2], data: new Float32Array(2) };
    const sd = new Map<string, HostTensor>([
      ['bn.weight', t],
      ['bn.bias', t],
      ['bn.running_mean', t],
      ['bn.running_var', t],
      ['bn.num_batches_tracked', { dtype: 'int64' as const, shape: [], data: new Float32Array(1) }],
    ]);
    const logs: string[] = [];
    expect([...dropStaleInstanceNormKeys(sd, (m) => logs.push(m)).keys()]).toEqual([...sd.keys()]);
    expect(logs).toEqual([]);
  });
});
