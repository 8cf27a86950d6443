// `F`, the functional API: the ops written out in functional.ts plus the elementwise ones generated
// from the kernels' records (functional_unary.ts). One object, so that a new record is in `F` by itself.
import * as written from './functional.js';
import { UNARY } from './functional_unary.js';

export const F = { ...written, ...UNARY };
