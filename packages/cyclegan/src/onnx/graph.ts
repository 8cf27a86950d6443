import type { HostTensor, StateDict } from '../checkpoint/index.js';
import { CheckpointError } from '../errors.js';
import {
  type AttributeProto,
  AttributeType,
  type NodeProto,
  TensorDataType,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

export type Attr = number | string | readonly number[] | { float: number } | { floats: readonly number[] };

function toAttribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'number') return { name, type: AttributeType.INT, i: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: v };
  if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
  return { name, type: AttributeType.INTS, ints: v };
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw_data is little-endian, as are the typed arrays of every platform we run on.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Collects an ONNX graph while a network family's builder walks its layers: nodes with generated
 * value names, initializers taken from the state dict by their PyTorch key (so the ONNX file names
 * every weight as torch does), and every key that was missing or mis-shaped. Nothing is thrown
 * halfway: `finish()` reports all problems at once, and unused checkpoint keys as unexpected.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly missing: string[] = [];
  private readonly misShaped: string[] = [];
  private readonly consts = new Map<string, string>();
  private counter = 0;

  constructor(
    private readonly sd: StateDict,
    private readonly source: string,
  ) {}

  /** A fresh value name, readable in Netron: `<torch module path>/<op>`. */
  private fresh(hint: string): string {
    return `${hint}:${this.counter++}`;
  }

  node(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, hint = opType): string {
    const out = this.fresh(hint);
    this.nodes.push({
      name: out,
      opType,
      inputs,
      outputs: [out],
      attributes: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return out;
  }

  /**
   * The checkpoint tensor `key` as an initializer, expected to have `shape`. A missing or mis-shaped
   * key is recorded (and a zero placeholder returned) so one error can list them all.
   */
  weight(key: string, shape: readonly number[]): string {
    const t: HostTensor | undefined = this.sd.get(key);
    this.used.add(key);
    if (!t) {
      this.missing.push(`${key} [${shape.join(',')}]`);
      return key;
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      this.misShaped.push(`${key}: expected [${shape.join(',')}], got [${t.shape.join(',')}]`);
      return key;
    }
    this.initializers.push({ name: key, dims: shape, dataType: TensorDataType.FLOAT, raw: bytesOf(t.data) });
    return key;
  }

  /** Marks a key the network has but the graph does not read (BatchNorm's num_batches_tracked). */
  ignore(key: string): void {
    this.used.add(key);
  }

  /** A float32 constant initializer, shared between nodes that ask for the same values. */
  floatConst(hint: string, shape: readonly number[], values: ArrayLike<number>): string {
    return this.constant(hint, shape, Float32Array.from(values), TensorDataType.FLOAT);
  }

  int64Const(hint: string, values: readonly number[]): string {
    return this.constant(hint, [values.length], BigInt64Array.from(values, BigInt), TensorDataType.INT64);
  }

  private constant(
    hint: string,
    shape: readonly number[],
    data: Float32Array | BigInt64Array,
    dataType: TensorProto['dataType'],
  ): string {
    const key = `${dataType}|${shape.join(',')}|${data.join(',')}`;
    const known = this.consts.get(key);
    if (known) return known;
    const name = `const/${hint}:${this.counter++}`;
    this.consts.set(key, name);
    this.initializers.push({ name, dims: shape, dataType, raw: bytesOf(data) });
    return name;
  }

  /**
   * Throws one CheckpointError naming every missing, mis-shaped and unexpected key, with `hint`
   * saying what the builder assumed and how to override it.
   */
  finish(hint: string): void {
    const unexpected = [...this.sd.keys()].filter((k) => !this.used.has(k));
    if (this.missing.length === 0 && this.misShaped.length === 0 && unexpected.length === 0) return;
    const list = (title: string, items: string[]) =>
      items.length
        ? `\n  ${title} (${items.length}):\n    ${items.slice(0, 12).join('\n    ')}${items.length > 12 ? '\n    …' : ''}`
        : '';
    throw new CheckpointError(
      `${this.source}: the checkpoint does not fit the network to export` +
        list('missing keys', this.missing) +
        list('mis-shaped keys', this.misShaped) +
        list('unexpected keys', unexpected) +
        `\n(${hint})`,
    );
  }
}
