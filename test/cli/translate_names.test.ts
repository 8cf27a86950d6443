import { describe, expect, it } from 'vitest';
import { outputNames } from '../../packages/cyclegan/src/cli-translate.js';

/** Folder translate writes `<stem>.png` per input; inputs that would share a name must never overwrite each other. */
describe('outputNames', () => {
  it('keeps plain names when nothing clashes', () => {
    expect(outputNames(['in/a.png', 'in/b.jpg'])).toEqual({ names: ['a.png', 'b.png'], notes: [] });
  });

  it('same.png and same.jpg become same_png.png and same_jpg.png, with a note', () => {
    const r = outputNames(['in/a.png', 'in/same.jpg', 'in/same.png']);
    expect(r.names).toEqual(['a.png', 'same_jpg.png', 'same_png.png']);
    expect(r.notes).toEqual([
      'same.jpg, same.png would all be written as same.png: writing same_jpg.png, same_png.png instead',
    ]);
  });

  it('a suffixed name that is itself an input name gets a number; case-insensitive like macOS disks', () => {
    const r = outputNames(['same.jpg', 'same.png', 'same_png.png', 'A.png', 'a.jpeg']);
    expect(new Set(r.names.map((n) => n.toLowerCase())).size).toBe(5);
    expect(r.names).toEqual(['same_jpg.png', 'same_png.png', 'same_png_2.png', 'A_png.png', 'a_jpeg.png']);
    expect(r.notes).toContain('same_png.png: same_png.png is taken, writing same_png_2.png');
  });
});
