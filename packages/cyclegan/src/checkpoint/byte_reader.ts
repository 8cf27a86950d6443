/** Exact below 2^53; beyond that a power of two, since the digits would be rounding noise. */
export function fmtCount(n: number): string {
  if (Number.isSafeInteger(n)) return String(n);
  const e = Math.log2(n);
  return Number.isInteger(e) ? `2^${e}` : `about 2^${e.toFixed(1)}`;
}

/**
 * Bounds-checked little-endian cursor over a byte array. Every read checks the
 * remaining length first and reports through `fail`, so a truncated or lying
 * file becomes a CheckpointError instead of a RangeError or a garbage value.
 */
export class ByteReader {
  private readonly dv: DataView;

  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    private readonly fail: (msg: string) => never,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /**
   * `n` may be a huge or non-integer declared length; comparing before any
   * allocation is what makes "declares 2^60 bytes" fail fast.
   */
  need(n: number, what: string): void {
    if (!(Number.isInteger(n) && n >= 0)) this.fail(`${what} has an invalid length ${n}`);
    if (n > this.remaining) {
      this.fail(
        `${what} needs ${fmtCount(n)} bytes at byte ${this.pos} but only ${this.remaining} remain (file truncated?)`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /**
   * Unsigned 64-bit as a number. Above 2^53 the value is inexact, which is fine:
   * it is only ever compared against buffer sizes, and any such value is too big.
   */
  u64(what: string): number {
    this.need(8, what);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  /** Signed 64-bit as a number (inexact beyond 2^53, see u64). */
  i64(what: string): number {
    this.need(8, what);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getInt32(this.pos + 4, true);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  f64be(what: string): number {
    this.need(8, what);
    const v = this.dv.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** A view (no copy) of the next `n` bytes. */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}
