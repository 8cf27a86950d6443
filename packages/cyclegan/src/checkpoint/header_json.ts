import { MAX_HEADER_JSON_DEPTH } from './limits.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
/** Objects come back as Maps: file order kept, and a key like `__proto__` is just a key. */
export type JsonObject = Map<string, JsonValue>;

/**
 * A strict JSON parser for the safetensors header. JSON.parse would read it,
 * but it silently keeps the last of two equal keys (so a crafted header can
 * show one tensor to another reader and a different one to us), and its errors
 * do not always say where. `fail` gets the problem and the character index.
 * Nesting and keys per object are capped, so recursion depth and work stay
 * bounded whatever the file says.
 */
export function parseHeaderJson(
  text: string,
  /** Keys one object may have, and values in all; checked while parsing, so a huge header is refused early. */
  limits: { maxKeys: number; maxValues: number },
  fail: (msg: string, at: number, kind: 'syntax' | 'refused') => never,
): JsonValue {
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const { maxKeys, maxValues } = limits;
  let pos = 0;
  let values = 0;

  const skipWhitespace = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      pos++;
    }
  };

  // A loop, not a regex: V8's backtracking regexes can overflow on a very long string.
  const readString = (): string => {
    const start = pos;
    let escaped = false;
    let i = pos + 1;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start, 'syntax');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('unescaped control character in a string', i, 'syntax');
      if (c === 0x5c) {
        escaped = true;
        const e = text[i + 1] ?? '';
        if (e !== '' && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail(`invalid escape \\${e} in a string`, i, 'syntax');
        continue;
      }
      i++;
    }
    pos = i + 1;
    const raw = text.slice(start, pos);
    // The escapes were checked above, so JSON.parse of this one token cannot fail.
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };

  const expect = (ch: string, what: string): void => {
    skipWhitespace();
    if (text[pos] !== ch) fail(`expected ${what}, found ${describe(text[pos])}`, pos, 'syntax');
    pos++;
  };

  const object = (depth: number): JsonObject => {
    if (depth > MAX_HEADER_JSON_DEPTH) fail(`nested deeper than ${MAX_HEADER_JSON_DEPTH} levels`, pos, 'refused');
    pos++; // '{'
    const out: JsonObject = new Map();
    skipWhitespace();
    if (text[pos] === '}') {
      pos++;
      return out;
    }
    for (;;) {
      skipWhitespace();
      if (text[pos] !== '"') fail(`expected a quoted key, found ${describe(text[pos])}`, pos, 'syntax');
      const at = pos;
      const key = readString();
      if (out.has(key))
        fail(`duplicate key ${JSON.stringify(key)} (a JSON reader would silently keep the last)`, at, 'refused');
      if (out.size === maxKeys) fail(`an object has more than ${maxKeys} keys`, at, 'refused');
      expect(':', `':' after key ${JSON.stringify(key)}`);
      out.set(key, value(depth));
      skipWhitespace();
      const c = text[pos++];
      if (c === '}') return out;
      if (c !== ',')
        fail(`expected ',' or '}' after the value of ${JSON.stringify(key)}, found ${describe(c)}`, pos - 1, 'syntax');
    }
  };

  const array = (depth: number): JsonValue[] => {
    if (depth > MAX_HEADER_JSON_DEPTH) fail(`nested deeper than ${MAX_HEADER_JSON_DEPTH} levels`, pos, 'refused');
    pos++; // '['
    const out: JsonValue[] = [];
    skipWhitespace();
    if (text[pos] === ']') {
      pos++;
      return out;
    }
    for (;;) {
      out.push(value(depth));
      skipWhitespace();
      const c = text[pos++];
      if (c === ']') return out;
      if (c !== ',') fail(`expected ',' or ']' in an array, found ${describe(c)}`, pos - 1, 'syntax');
    }
  };

  const value = (depth: number): JsonValue => {
    if (++values > maxValues) fail(`more than ${maxValues} values`, pos, 'refused');
    skipWhitespace();
    const c = text[pos];
    if (c === '{') return object(depth + 1);
    if (c === '[') return array(depth + 1);
    if (c === '"') return readString();
    if (c === 't' || c === 'f' || c === 'n') {
      const word = c === 't' ? 'true' : c === 'f' ? 'false' : 'null';
      if (!text.startsWith(word, pos)) fail(`expected a value, found ${describe(c)}`, pos, 'syntax');
      pos += word.length;
      return c === 't' ? true : c === 'f' ? false : null;
    }
    // Shapes and offsets are plain integers: read those without the regex.
    let end = pos;
    let n = 0;
    for (let d = text.charCodeAt(end) - 48; d >= 0 && d <= 9 && end - pos < 15; d = text.charCodeAt(end) - 48) {
      n = n * 10 + d;
      end++;
    }
    const after = text.charCodeAt(end);
    const plain = end > pos && (c !== '0' || end === pos + 1);
    if (plain && after !== 0x2e && after !== 0x65 && after !== 0x45 && !(after >= 0x30 && after <= 0x39)) {
      pos = end;
      return n;
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m) {
      pos += m[0].length;
      return Number(m[0]);
    }
    return fail(`expected a value, found ${describe(c)}`, pos, 'syntax');
  };

  const out = value(0);
  skipWhitespace(); // the reference writer pads the header with spaces
  if (pos < text.length) fail(`unexpected ${describe(text[pos])} after the end of the JSON`, pos, 'syntax');
  return out;
}

function describe(c: string | undefined): string {
  return c === undefined ? 'the end of the header' : JSON.stringify(c);
}
