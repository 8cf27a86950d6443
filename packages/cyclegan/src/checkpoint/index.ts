export { assertFiniteWeights } from './finite.js';
export type { DType, HostTensor, StateDict } from './host_tensor.js';
export { numelOf } from './host_tensor.js';
export { MAX_STATE_DICT_KEYS } from './limits.js';
export { dropStaleInstanceNormKeys, readCheckpoint } from './load.js';
export { readPth, writePth } from './pth.js';
export { readSafetensors, writeSafetensors } from './safetensors.js';
export { readZip, writeZip, type ZipEntry, type ZipWriteOptions } from './zip.js';
