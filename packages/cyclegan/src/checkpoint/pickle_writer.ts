/**
 * Emits pickle protocol 2 opcodes, the subset torch.save uses. The caller
 * drives the structure; this class only knows how each value is encoded.
 */
export class PickleWriter {
  private buf = new Uint8Array(1024);
  private len = 0;
  private readonly memo = new Map<string, number>();
  private readonly enc = new TextEncoder();

  constructor() {
    this.op(0x80, 2); // PROTO 2
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private op(...bytes: number[]): this {
    this.reserve(bytes.length);
    for (const b of bytes) this.buf[this.len++] = b;
    return this;
  }

  private raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  private u32(v: number): void {
    this.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  mark(): this {
    return this.op(0x28);
  }

  /** GLOBAL, memoised so each global is spelled out once (as pickle does). */
  global(module: string, name: string): this {
    const key = `${module}\n${name}\n`;
    const idx = this.memo.get(key);
    if (idx !== undefined) return this.get(idx);
    this.op(0x63);
    this.raw(this.enc.encode(key));
    return this.put(key);
  }

  private put(key: string): this {
    const idx = this.memo.size;
    this.memo.set(key, idx);
    if (idx < 256) return this.op(0x71, idx); // BINPUT
    this.op(0x72); // LONG_BINPUT
    this.u32(idx);
    return this;
  }

  private get(idx: number): this {
    if (idx < 256) return this.op(0x68, idx); // BINGET
    this.op(0x6a); // LONG_BINGET
    this.u32(idx);
    return this;
  }

  str(s: string): this {
    const b = this.enc.encode(s);
    this.op(0x58); // BINUNICODE
    this.u32(b.length);
    this.raw(b);
    return this;
  }

  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new RangeError(`pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 256) return this.op(0x4b, v); // BININT1
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >>> 8); // BININT2
    if (v >= -(2 ** 31) && v < 2 ** 31) {
      this.op(0x4a); // BININT
      this.u32(v >>> 0);
      return this;
    }
    // LONG1: little-endian two's complement, 8 bytes is plenty below 2^53.
    const bytes: number[] = [];
    let x = BigInt(v);
    for (let i = 0; i < 8; i++) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this.op(0x8a, 8, ...bytes);
  }

  bool(v: boolean): this {
    return this.op(v ? 0x88 : 0x89);
  }

  none(): this {
    return this.op(0x4e);
  }

  emptyTuple(): this {
    return this.op(0x29);
  }

  /** TUPLE over everything since the last mark(). */
  tuple(): this {
    return this.op(0x74);
  }

  /** A tuple of ints, using TUPLE1–3 for short ones like pickle does. */
  intTuple(values: readonly number[]): this {
    if (values.length === 0) return this.emptyTuple();
    if (values.length > 3) this.mark();
    for (const v of values) this.int(v);
    return values.length > 3 ? this.tuple() : this.op([0, 0x85, 0x86, 0x87][values.length]);
  }

  reduce(): this {
    return this.op(0x52);
  }

  binpersid(): this {
    return this.op(0x51);
  }

  setitems(): this {
    return this.op(0x75);
  }

  /** STOP, and the finished pickle. */
  finish(): Uint8Array {
    this.op(0x2e);
    return this.buf.slice(0, this.len);
  }
}
