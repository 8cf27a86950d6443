import { type Device, LifetimeError, type Shape, Tensor } from '@cg/tensor-core';

/** Element type of a storage array. */
export type StorageType = 'f32' | 'u32' | 'i32' | 'vec2f' | 'vec4f' | 'vec4u' | 'vec4i';

/** A storage binding: a name (an f32 array), or a name with its element type and access mode. */
export type BindingDecl =
  | string
  | { readonly name: string; readonly type?: StorageType; readonly access?: 'read' | 'read_write' };

/** A uniform field: a 4-byte scalar, or `u32[8]`-style arrays of 4·k words (WGSL `array<vec4u, k>`). */
export type UniformType = 'u32' | 'i32' | 'f32' | `${'u32' | 'i32' | 'f32'}[${number}]`;

export type UniformDecl = Readonly<Record<string, UniformType>>;

/** The values a kernel's uniforms take, by name: numbers, or arrays for array fields. */
export type UniformValues<U extends UniformDecl> = {
  readonly [K in keyof U]: U[K] extends `${string}[${number}]` ? readonly number[] : number;
};

/**
 * Everything a kernel binds, declared once: the runtime generates the
 * `@binding` lines and `struct P` (bound as `u`) in front of the WGSL body,
 * and packs the uniform values by name. Inputs are bound first (`read`
 * unless stated), then outputs (`read_write` unless stated), then `u`.
 */
export interface KernelDecl<U extends UniformDecl = UniformDecl> {
  readonly inputs: readonly BindingDecl[];
  readonly outputs: readonly BindingDecl[];
  readonly uniforms?: U;
  /** WGSL extensions the kernel uses; their `enable` directives must precede every declaration. */
  readonly enables?: readonly 'subgroups'[];
}

/** Identity with the literal types kept; for declarations that live outside a `runKernel` call. */
export function kernelDecl<const U extends UniformDecl = Record<never, UniformType>>(d: KernelDecl<U>): KernelDecl<U> {
  return d;
}

const VEC_OF: Record<string, string> = { u32: 'vec4u', i32: 'vec4i', f32: 'vec4f' };

function arrayField(t: UniformType): { scalar: 'u32' | 'i32' | 'f32'; words: number } | null {
  const m = /^(u32|i32|f32)\[(\d+)\]$/.exec(t);
  return m ? { scalar: m[1] as 'u32' | 'i32' | 'f32', words: Number(m[2]) } : null;
}

interface Field {
  name: string;
  scalar: 'u32' | 'i32' | 'f32';
  /** Word offset in the struct. */
  at: number;
  /** null for a scalar, the word count for an array. */
  words: number | null;
}

interface Layout {
  fields: Field[];
  words: number;
  wgsl: string;
}

const layouts = new WeakMap<UniformDecl, Layout>();

/** Layout of `struct P`: scalars take 4 bytes; arrays of vec4 start on 16 bytes (WGSL's uniform alignment). */
function layout(op: string, uniforms: UniformDecl): Layout {
  let l = layouts.get(uniforms);
  if (!l) {
    l = computeLayout(op, uniforms);
    layouts.set(uniforms, l);
  }
  return l;
}

function computeLayout(op: string, uniforms: UniformDecl): Layout {
  const fields: Field[] = [];
  const members: string[] = [];
  let at = 0;
  let pad = 0;
  for (const [name, t] of Object.entries(uniforms)) {
    const arr = arrayField(t);
    if (arr) {
      if (arr.words < 4 || arr.words % 4 !== 0) {
        throw new Error(`${op}: uniform "${name}" must have a multiple of 4 words (got ${t})`);
      }
      while (at % 4 !== 0) {
        members.push(`_pad${pad++}: u32`);
        at++;
      }
      members.push(`${name}: array<${VEC_OF[arr.scalar]}, ${arr.words / 4}>`);
      fields.push({ name, scalar: arr.scalar, at, words: arr.words });
      at += arr.words;
    } else {
      members.push(`${name}: ${t}`);
      fields.push({ name, scalar: t as 'u32' | 'i32' | 'f32', at, words: null });
      at++;
    }
  }
  return { fields, words: Math.max(4, Math.ceil(at / 4) * 4), wgsl: `struct P { ${members.join(', ')} }` };
}

function bindingParts(
  b: BindingDecl,
  dflt: 'read' | 'read_write',
): { name: string; type: StorageType; access: string } {
  return typeof b === 'string'
    ? { name: b, type: 'f32', access: dflt }
    : { name: b.name, type: b.type ?? 'f32', access: b.access ?? dflt };
}

/** The WGSL header of a declaration: `enable` directives, storage bindings (inputs → outputs), then `struct P` and `u`. */
export function declHeader(op: string, decl: KernelDecl): string {
  const lines: string[] = (decl.enables ?? []).map((e) => `enable ${e};`);
  let n = 0;
  for (const [list, dflt] of [
    [decl.inputs, 'read'],
    [decl.outputs, 'read_write'],
  ] as const) {
    for (const b of list) {
      const { name, type, access } = bindingParts(b, dflt);
      lines.push(`@group(0) @binding(${n++}) var<storage, ${access}> ${name}: array<${type}>;`);
    }
  }
  if (decl.uniforms && Object.keys(decl.uniforms).length > 0) {
    lines.push(layout(op, decl.uniforms).wgsl);
    lines.push(`@group(0) @binding(${n}) var<uniform> u: P;`);
  }
  return lines.join('\n');
}

/** Packs uniform values by name into the bytes of `struct P`; a missing, extra or malformed value throws. */
export function packUniforms(
  op: string,
  uniforms: UniformDecl,
  values: Readonly<Record<string, unknown>>,
): ArrayBuffer {
  const { fields, words } = layout(op, uniforms);
  const given = Object.keys(values);
  if (given.length !== fields.length) {
    const extra = given.filter((k) => !(k in uniforms));
    if (extra.length > 0)
      throw new Error(`${op}: unknown uniform "${extra[0]}" (declared: ${Object.keys(uniforms).join(', ')})`);
  }
  const buf = new ArrayBuffer(words * 4);
  const u = new Uint32Array(buf);
  const i = new Int32Array(buf);
  const f = new Float32Array(buf);
  for (const fd of fields) {
    const v = values[fd.name];
    if (v === undefined) throw new Error(`${op}: uniform "${fd.name}" is missing`);
    const list: readonly unknown[] = fd.words === null ? [v] : (v as readonly unknown[]);
    if (fd.words !== null && (!Array.isArray(v) || v.length !== fd.words)) {
      throw new Error(`${op}: uniform "${fd.name}" must be an array of ${fd.words} numbers (got ${JSON.stringify(v)})`);
    }
    list.forEach((x, k) => {
      if (typeof x !== 'number') {
        throw new Error(`${op}: uniform "${fd.name}" must be a number (got ${String(x)})`);
      }
      if (fd.scalar === 'u32') u[fd.at + k] = x >>> 0;
      else if (fd.scalar === 'i32') i[fd.at + k] = x | 0;
      else f[fd.at + k] = x;
    });
  }
  return buf;
}

function declSignature(decl: KernelDecl): string {
  const b = (list: readonly BindingDecl[]) =>
    list.map((x) => (typeof x === 'string' ? x : `${x.name}:${x.type ?? ''}:${x.access ?? ''}`)).join(',');
  const u = decl.uniforms ? Object.entries(decl.uniforms).map(([k, t]) => `${k}:${t}`) : [];
  return `${b(decl.inputs)};${b(decl.outputs)};${u.join(',')};${(decl.enables ?? []).join(',')}`;
}

export interface KernelCall<U extends UniformDecl = UniformDecl> {
  /** Op name, used as the pipeline label and in error messages. */
  op: string;
  /** Everything baked into the WGSL (tile sizes, constant shapes, the declaration's variant); the cache key is `${op}|${key}`. */
  key: string;
  /** Bindings and uniforms; the runtime prepends their WGSL to `wgsl()`. */
  decl: KernelDecl<U>;
  /** Builds the WGSL body (everything but the bindings and `struct P`); only called on a pipeline-cache miss. */
  wgsl: () => string;
  /** One tensor per declared input, then per declared output, in declaration order. */
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  /** The declared uniforms' values, by name. */
  uniforms?: NoInfer<UniformValues<U>>;
  workgroups: readonly [number, number?, number?];
}

/** Records one kernel dispatch on the inputs' device. Nothing is submitted or read back. */
export function runKernel<const U extends UniformDecl = Record<never, UniformType>>(call: KernelCall<U>): void {
  const { op, decl } = call;
  if (call.inputs.length !== decl.inputs.length || call.outputs.length !== decl.outputs.length) {
    throw new Error(
      `${op}: ${call.inputs.length} inputs and ${call.outputs.length} outputs given, ` +
        `but ${decl.inputs.length} and ${decl.outputs.length} declared`,
    );
  }
  const hasUniforms = decl.uniforms !== undefined && Object.keys(decl.uniforms).length > 0;
  const params = hasUniforms ? packUniforms(op, decl.uniforms as UniformDecl, call.uniforms ?? {}) : null;
  if (!hasUniforms && call.uniforms && Object.keys(call.uniforms).length > 0) {
    throw new Error(`${op}: uniform values given, but none declared`);
  }
  const device = (call.outputs[0] ?? call.inputs[0]).device;
  // The declaration is part of the key, so a variant (an optional bias binding, say) never reuses the wrong pipeline.
  const pipeline = device.pipeline(
    `${op}|${call.key}|${declSignature(decl)}`,
    op,
    () => `${declHeader(op, decl)}\n${call.wgsl()}`,
  );
  const buffers = [...call.inputs, ...call.outputs].map((t) => ({ buffer: t.buffer, bytes: t.byteLength }));
  const [x, y = 1, z = 1] = call.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  device.dispatch(pipeline, buffers, params, [x, y, z]);
}

/** WebGPU caps each dispatch dimension at 65535 workgroups. */
export const MAX_GROUPS_PER_DIM = 65535;

/**
 * Workgroup counts for `n` independent items at `perGroup` items per
 * workgroup, folded into 2-D when one dimension is not enough. Pair with
 * `flatIndex` in WGSL.
 */
export function flatWorkgroups(n: number, perGroup: number): [number, number, number] {
  const groups = Math.ceil(n / perGroup);
  if (groups <= MAX_GROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * WGSL for the linear workgroup index under `flatWorkgroups`; needs
 * `@builtin(workgroup_id) wid` and `@builtin(num_workgroups) nwg` in main.
 */
export const flatGroupIndex = 'wid.x + wid.y * nwg.x';

/** Allocates the output of an op on `like`'s device. */
export function empty(like: Tensor, shape: Shape): Tensor {
  return Tensor.empty(like.device, shape);
}

export function sameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0].device;
  for (const t of ts) {
    if (t.device !== d) throw new LifetimeError(`${op}: tensors live on different devices`);
  }
  return d;
}
