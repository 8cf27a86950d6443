// Fails when an import breaks the layering (docs/ARCHITECTURE.md §1):
// - packages depend one way: tensor-core ← kernels-wgsl ← autograd ← cyclegan;
// - no import cycles between files;
// - Node built-ins only in files whose names say so (node.ts, node-*.ts, cli*.ts, fs-*.ts);
// - Dawn (`webgpu`) and navigator.gpu only under platform/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const ORDER = ['tensor-core', 'kernels-wgsl', 'autograd', 'cyclegan'];
const NODE_FILE = /(^|\/)(node(-[\w-]+)?|cli[\w-]*|fs-[\w-]+)\.ts$/;
const problems = [];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return walk(p);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const graph = new Map();

for (const pkg of ORDER) {
  const srcDir = join(root, 'packages', pkg, 'src');
  for (const file of walk(srcDir)) {
    const rel = relative(root, file);
    const text = readFileSync(file, 'utf8');
    const deps = [];
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2];
      // Type-only imports vanish at run time: they count for layering, not for load cycles.
      const typeOnly = /^\s*(import|export)\s+type\s/.test(m[0]);
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        if (!target.startsWith(srcDir)) problems.push(`${rel}: relative import '${spec}' leaves its package`);
        if (!typeOnly) deps.push(target);
      } else if (spec.startsWith('@cg/')) {
        const other = spec.slice(4).split('/')[0];
        const i = ORDER.indexOf(other);
        if (i < 0 || i >= ORDER.indexOf(pkg)) {
          problems.push(`${rel}: imports ${spec}, against the direction ${ORDER.join(' ← ')}`);
        }
      } else if (
        spec.startsWith('node:') ||
        ['fs', 'path', 'os', 'url', 'child_process', 'zlib', 'crypto'].includes(spec)
      ) {
        if (!NODE_FILE.test(file))
          problems.push(`${rel}: imports Node built-in '${spec}' (only node.ts, node-*.ts, cli*.ts, fs-*.ts may)`);
      } else if (spec === 'webgpu' && !rel.includes('/platform/')) {
        problems.push(`${rel}: imports Dawn ('webgpu') outside platform/`);
      }
    }
    if (/navigator\.gpu/.test(text) && !rel.includes('/platform/'))
      problems.push(`${rel}: uses navigator.gpu outside platform/`);
    graph.set(file, deps);
  }
}

// Cycle detection (DFS with colours).
const colour = new Map();
const stack = [];
function visit(f) {
  colour.set(f, 1);
  stack.push(f);
  for (const d of graph.get(f) ?? []) {
    if (!graph.has(d)) continue;
    if (colour.get(d) === 1) {
      const cycle = stack
        .slice(stack.indexOf(d))
        .concat(d)
        .map((p) => relative(root, p));
      problems.push(`import cycle: ${cycle.join(' → ')}`);
    } else if (!colour.get(d)) visit(d);
  }
  stack.pop();
  colour.set(f, 2);
}
for (const f of graph.keys()) if (!colour.get(f)) visit(f);

if (problems.length) {
  console.error(`check-deps: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-deps: ${graph.size} files, layering and cycles OK`);
