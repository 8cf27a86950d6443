// The few pngjs 7 entry points fs-images.ts uses (pngjs ships no types and @types/pngjs is not a dependency).
declare module 'pngjs' {
  interface PngMetadata {
    width: number;
    height: number;
    depth: 1 | 2 | 4 | 8 | 16;
    colorType: 0 | 2 | 3 | 4 | 6;
    /** Always RGBA, 8 bits per channel: pngjs expands palettes and gray, and rescales 16-bit samples. */
    data: Uint8Array;
  }
  interface PngWriteOptions {
    colorType?: 0 | 2 | 4 | 6;
    inputColorType?: 0 | 2 | 4 | 6;
    inputHasAlpha?: boolean;
    bitDepth?: 8 | 16;
    deflateLevel?: number;
  }
  interface PngSync {
    read(buffer: Uint8Array, options?: { checkCRC?: boolean; skipRescale?: boolean }): PngMetadata;
    write(png: { width: number; height: number; data: Uint8Array }, options?: PngWriteOptions): Uint8Array;
  }
  const pngjs: { PNG: { sync: PngSync } };
  export default pngjs;
}
