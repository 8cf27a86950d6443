import protobuf from 'protobufjs/minimal.js';

/**
 * The part of onnx.proto (onnx/onnx, `syntax = "proto2"`, IR version 8) that an exported CycleGAN
 * network uses, and its wire encoding through protobufjs's Writer, written the way `pbjs -t
 * static-module` writes it: one `encode` per message, field numbers as in onnx.proto.
 *
 * Why not protobufjs's reflection (`Root.fromJSON` or `.proto` parsing): its encoders are compiled
 * with `new Function`, which a page with a strict Content-Security-Policy refuses, and it would pull
 * the parser into the web bundle. The minimal runtime has neither. Repeated scalars are written
 * unpacked, which is proto2's default (every parser also accepts packed).
 *
 * Size: protobufjs 8's Writer grows one buffer by doubling and closes each nested message with one
 * `copyWithin` of its body, so a 45 MB resnet_9blocks is copied a small constant number of times
 * (one per nesting level), never quadratically.
 */

export const TensorDataType = { FLOAT: 1, INT64: 7 } as const;
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export interface TensorProto {
  name: string;
  dims: readonly number[];
  dataType: (typeof TensorDataType)[keyof typeof TensorDataType];
  /** Little-endian bytes of the values (`raw_data`). */
  raw: Uint8Array;
}

export type AttributeProto =
  | { name: string; type: typeof AttributeType.FLOAT; f: number }
  | { name: string; type: typeof AttributeType.INT; i: number }
  | { name: string; type: typeof AttributeType.STRING; s: string }
  | { name: string; type: typeof AttributeType.FLOATS; floats: readonly number[] }
  | { name: string; type: typeof AttributeType.INTS; ints: readonly number[] };

export interface NodeProto {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly AttributeProto[];
}

/** A tensor value's name, element type and shape; a string dim is symbolic (`dim_param`). */
export interface ValueInfoProto {
  name: string;
  elemType: (typeof TensorDataType)[keyof typeof TensorDataType];
  dims: readonly (number | string)[];
}

export interface GraphProto {
  name: string;
  docString: string;
  nodes: readonly NodeProto[];
  initializers: readonly TensorProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  docString: string;
  opsetImports: readonly { domain: string; version: number }[];
  metadata: readonly { key: string; value: string }[];
  graph: GraphProto;
}

type Writer = protobuf.Writer;
const VARINT = 0;
const I32 = 5;
const LEN = 2;
const tag = (field: number, wire: number) => ((field << 3) | wire) >>> 0;

function str(w: Writer, field: number, s: string): void {
  if (s !== '') w.uint32(tag(field, LEN)).string(s);
}

/** One length-delimited sub-message. */
function sub(w: Writer, field: number, encode: () => void): void {
  w.uint32(tag(field, LEN)).fork();
  encode();
  w.ldelim();
}

function encodeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) w.uint32(tag(1, VARINT)).int64(d); // dims
  w.uint32(tag(2, VARINT)).int32(t.dataType); // data_type
  str(w, 8, t.name); // name
  w.uint32(tag(9, LEN)).bytes(t.raw); // raw_data
}

function encodeAttribute(w: Writer, a: AttributeProto): void {
  str(w, 1, a.name);
  switch (a.type) {
    case AttributeType.FLOAT:
      w.uint32(tag(2, I32)).float(a.f);
      break;
    case AttributeType.INT:
      w.uint32(tag(3, VARINT)).int64(a.i);
      break;
    case AttributeType.STRING:
      w.uint32(tag(4, LEN)).bytes(new TextEncoder().encode(a.s));
      break;
    case AttributeType.FLOATS:
      for (const f of a.floats) w.uint32(tag(7, I32)).float(f);
      break;
    case AttributeType.INTS:
      for (const i of a.ints) w.uint32(tag(8, VARINT)).int64(i);
      break;
  }
  w.uint32(tag(20, VARINT)).int32(a.type); // type
}

function encodeNode(w: Writer, n: NodeProto): void {
  for (const i of n.inputs) w.uint32(tag(1, LEN)).string(i);
  for (const o of n.outputs) w.uint32(tag(2, LEN)).string(o);
  str(w, 3, n.name);
  str(w, 4, n.opType);
  for (const a of n.attributes) sub(w, 5, () => encodeAttribute(w, a));
}

function encodeValueInfo(w: Writer, v: ValueInfoProto): void {
  str(w, 1, v.name);
  // type: TypeProto { tensor_type (1): Tensor { elem_type (1), shape (2): TensorShapeProto { dim (1) } } }
  sub(w, 2, () =>
    sub(w, 1, () => {
      w.uint32(tag(1, VARINT)).int32(v.elemType);
      sub(w, 2, () => {
        for (const d of v.dims) {
          sub(w, 1, () => {
            if (typeof d === 'number')
              w.uint32(tag(1, VARINT)).int64(d); // dim_value
            else w.uint32(tag(2, LEN)).string(d); // dim_param
          });
        }
      });
    }),
  );
}

function encodeGraph(w: Writer, g: GraphProto): void {
  for (const n of g.nodes) sub(w, 1, () => encodeNode(w, n));
  str(w, 2, g.name);
  for (const t of g.initializers) sub(w, 5, () => encodeTensor(w, t));
  str(w, 10, g.docString);
  for (const v of g.inputs) sub(w, 11, () => encodeValueInfo(w, v));
  for (const v of g.outputs) sub(w, 12, () => encodeValueInfo(w, v));
}

/** ModelProto as the bytes of a `.onnx` file. */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(tag(1, VARINT)).int64(m.irVersion);
  str(w, 2, m.producerName);
  str(w, 3, m.producerVersion);
  str(w, 6, m.docString);
  sub(w, 7, () => encodeGraph(w, m.graph));
  for (const o of m.opsetImports) {
    sub(w, 8, () => {
      str(w, 1, o.domain);
      w.uint32(tag(2, VARINT)).int64(o.version);
    });
  }
  for (const p of m.metadata) {
    sub(w, 14, () => {
      str(w, 1, p.key);
      str(w, 2, p.value);
    });
  }
  return w.finish();
}
