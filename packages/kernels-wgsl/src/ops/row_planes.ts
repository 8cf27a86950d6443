import { MAX_GROUPS_PER_DIM } from '../runtime.js';

/**
 * The launch shape shared by the per-plane gather kernels (pads, upsampling):
 * workgroup (x, y|z) owns `rowsPerGroup` rows of plane y|z and its threads
 * stride each row's columns. No index is ever divided (a vector integer
 * divide is scalarised lane by lane on a CPU adapter), and the per-row part
 * of the index arithmetic is uniform across the workgroup.
 *
 * The kernel's uniforms must include ROW_PLANES_UNIFORMS.
 */
const WG = 64;

/** The uniforms `rowPlanesMain` reads; spread them into the kernel's declaration. */
export const ROW_PLANES_UNIFORMS = { rows: 'i32', cols: 'i32', rowsPerGroup: 'i32', planes: 'u32' } as const;
/** About this many elements per workgroup: whole rows, at least one. */
const ELEMENTS_PER_GROUP = 1024;

/** WGSL `main`: `rowSetup` runs once per row `r` of plane `p`, `body` once per column `c`. */
export function rowPlanesMain(rowSetup: string, body: string): string {
  return /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = i32(wid.y + wid.z * nwg.y);
  if (u32(p) >= u.planes) { return; }
  let r0 = i32(wid.x) * u.rowsPerGroup;
  let r1 = min(r0 + u.rowsPerGroup, u.rows);
  for (var r = r0; r < r1; r++) {
    ${rowSetup}
    for (var c = i32(lid); c < u.cols; c += ${WG}) {
      ${body}
    }
  }
}`;
}

/** Rows per workgroup and the dispatch size for `planes` planes of `rows` × `cols`. */
export function rowPlanesDispatch(
  planes: number,
  rows: number,
  cols: number,
): { rowsPerGroup: number; workgroups: [number, number, number] } {
  const rowsPerGroup = Math.max(1, Math.floor(ELEMENTS_PER_GROUP / cols));
  const z = Math.ceil(planes / MAX_GROUPS_PER_DIM);
  return { rowsPerGroup, workgroups: [Math.ceil(rows / rowsPerGroup), Math.ceil(planes / z), z] };
}
