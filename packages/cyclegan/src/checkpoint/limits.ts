/**
 * Bounds on what a checkpoint file may make the reader do. A file is
 * untrusted input: every size it declares is checked against these (and
 * against the bytes it really holds) before anything is allocated, so a
 * crafted file fails with a CheckpointError instead of a RangeError, a stack
 * overflow or a multi-GB allocation.
 */

/**
 * Keys in one state_dict (and items in any one pickled dict). A CycleGAN
 * generator has under 1,000 keys (resnet_64blocks with batch norm: ~800) and
 * the largest torch models this reader might meet have tens of thousands, so
 * 100,000 leaves room while keeping key listings, sorting and messages small.
 */
export const MAX_STATE_DICT_KEYS = 100_000;

/**
 * Nesting of the safetensors header JSON. A valid header is 3 deep (object →
 * tensor entry → shape array); the cap keeps a crafted `[[[[…` header from
 * costing anything.
 */
export const MAX_HEADER_JSON_DEPTH = 8;

/**
 * Entries in a torch.save zip: one per storage (at most one per tensor) plus
 * a few bookkeeping files (data.pkl, version, byteorder, …).
 */
export const MAX_ZIP_ENTRIES = MAX_STATE_DICT_KEYS + 64;

/**
 * Elements an expanded (stride-0) or overlapping tensor may claim beyond its
 * storage. torch state_dicts of real models never hold such views, but a
 * small broadcast bias is harmless; a large one is a few stored bytes claiming
 * a large weight (and through it a large network), so it is refused.
 */
export const MAX_EXPANDED_ELEMENTS = 4096;
