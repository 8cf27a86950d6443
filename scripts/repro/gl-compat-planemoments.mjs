// Minimal repro: Mesa llvmpipe's OpenGL (via Dawn's GL compatibility backend) lets a read of workgroup
// memory slip past the following workgroupBarrier(). Cause of planeMoments' wrong variances on GL.
// WGSL says the shader below writes 1 to every out[i]. Tint turns workgroupBarrier() into a bare GLSL
// `barrier()` (#version 450). In GLSL 4.50 that is enough to order shared-memory accesses, but llvmpipe
// runs lanes 8..127 as if their `a = partial[0]` came after the barrier, so they see lane 0's new
// partial[0] (1) and write 2. Adding memoryBarrierShared() to the GLSL fixes it. So does an extra
// storageBarrier() after the barrier in WGSL, which Tint emits as memoryBarrierBuffer().
//
//   node scripts/repro/gl-compat-planemoments.mjs
//   (Mesa 22.3.6, unpacked privately: LD_LIBRARY_PATH=<m22>/usr/lib/x86_64-linux-gnu
//    LIBGL_DRIVERS_PATH=<m22>/usr/lib/x86_64-linux-gnu/dri __EGL_VENDOR_LIBRARY_FILENAMES=<json>)
//
// Observed (webgpu 0.6.2):
//   vulkan  llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)          1 x128          ok
//   opengl  OpenGL 4.5 (Core Profile) Mesa 25.0.7        1 x8, 2 x120    WRONG
//   opengl  OpenGL 4.5 (Core Profile) Mesa 22.3.6        1 x8, 2 x120    WRONG
// On Mesa 25 planeMoments itself happens to pass. On 22.3.6 its second treeSum overwrites partial[0] early,
// and lanes ≥ 8 compute Σ(x − μ)² with μ ≈ 0, which gives the ~9300 variances. The same exact-output
// pattern (1 x8, 2 x120) comes from a hand-written GLSL 4.50 version of the shader run through EGL without
// Dawn, on both Mesa versions. With memoryBarrierShared() before each barrier() it gives 1 x128.
import { createRequire } from 'node:module';

const req = createRequire(new URL('../../packages/tensor-core/package.json', import.meta.url));
const { create, globals } = await import(req.resolve('webgpu'));
Object.assign(globalThis, globals);
process.env.EGL_PLATFORM ??= 'surfaceless';

const WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, 128>;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) lid: u32) {
  partial[lid] = 0.0;
  workgroupBarrier();
  let a = partial[0];          // every lane must read 0 here ...
  workgroupBarrier();          // ... before any lane passes this barrier and writes partial[0]
  partial[lid] = a + 1.0;
  workgroupBarrier();
  out[lid] = partial[lid];     // 1 everywhere
}`;

const instances = []; // dawn.node crashes if an instance is collected under its device
async function run(flags, adapterOptions) {
  const instance = create(flags);
  instances.push(instance);
  const adapter = await instance.requestAdapter(adapterOptions);
  if (!adapter) return console.log(`${flags.join(' ') || 'default'}: no adapter`);
  const device = await adapter.requestDevice();
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: WGSL }), entryPoint: 'main' },
  });
  const out = device.createBuffer({ size: 512, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 512, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: out } }],
    }),
  );
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, 512);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const r = Array.from(new Float32Array(read.getMappedRange()));
  const runs = [];
  for (let i = 0; i < r.length; ) {
    let j = i;
    while (j < r.length && r[j] === r[i]) j++;
    runs.push(`${r[i]} x${j - i}`);
    i = j;
  }
  console.log(
    `${adapter.info.description.padEnd(52)} ${runs.join(', ').padEnd(16)} ${r.every((v) => v === 1) ? 'ok' : 'WRONG'}`,
  );
}

await run([], {});
await run(['backend=opengl'], { featureLevel: 'compatibility' });
process.exit(0);
