/**
 * JSON read without losing a digit, for `ddb2os verify`. JSON.parse turns every
 * number into a double, so a stored `9007199254740993` would read back as
 * `9007199254740992` and a `0.10000000000000001` as `0.1`: verify would then
 * call a rounded document equal to its item, and show a value the document
 * does not hold. Here numbers keep their text and compare as exact decimals.
 */
import { BackfillError } from '../errors';
import { compareDecimals, parseDecimal } from '../mapping/decimal';

/** A JSON number as written, so that no digit is lost to a double. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** JSON as parseExactJson reads it: numbers as JsonNumber. */
export type ExactJson = null | boolean | string | JsonNumber | ExactJson[] | { [name: string]: ExactJson };

/** JSON with numbers either way: doubles (JSON.parse of what ddb2os wrote) or JsonNumber. */
export type JsonValue =
  | null
  | boolean
  | string
  | number
  | JsonNumber
  | JsonValue[]
  | { [name: string]: JsonValue };

/** Where two JSON values first differ; `undefined` on a side means the field is absent there. */
export interface JsonDifference {
  /** `price`, `lines[1].qty`, `tags["a.b"]`; '' for the whole value. */
  path: string;
  expected: JsonValue | undefined;
  actual: JsonValue | undefined;
}

/** Text that is not JSON. */
export class ExactJsonSyntaxError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExactJsonSyntaxError';
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const WHITESPACE = /[ \t\n\r]*/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings.
const CONTROL = /[\u0000-\u001f]/;

/** Parses JSON text like JSON.parse, except that numbers become JsonNumber. */
export function parseExactJson(text: string): ExactJson {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.value(0);
  parser.skipWhitespace();
  if (parser.pos !== text.length) parser.fail('unexpected text after the value');
  return value;
}

/** JSON text of a value: a JsonNumber written as it was read. */
export function stringifyExact(value: JsonValue): string {
  if (value instanceof JsonNumber) return value.text;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stringifyExact).join(',')}]`;
  return `{${Object.entries(value)
    .map(([name, member]) => `${JSON.stringify(name)}:${stringifyExact(member)}`)
    .join(',')}}`;
}

/**
 * Two numbers are equal when they denote the same decimal (`1.50` = `1.5` =
 * `15e-1`). A double stands for the decimal it prints as, which for every
 * number the mapping writes is the DynamoDB value itself.
 */
export function sameNumber(a: number | JsonNumber, b: number | JsonNumber): boolean {
  const left = typeof a === 'number' ? String(a) : a.text;
  const right = typeof b === 'number' ? String(b) : b.text;
  if (left === right) return true;
  const x = parseDecimal(left);
  const y = parseDecimal(right);
  return x !== undefined && y !== undefined && compareDecimals(x, y) === 0;
}

function isNumber(value: JsonValue | undefined): value is number | JsonNumber {
  return typeof value === 'number' || value instanceof JsonNumber;
}

/**
 * The first place where `actual` differs from `expected`, deep, or undefined
 * when they are equal. Object key order does not matter, array order does.
 * Expected fields are visited in their order, then fields only `actual` has.
 */
export function firstDifference(
  expected: JsonValue,
  actual: JsonValue | undefined,
  path = '',
): JsonDifference | undefined {
  if (actual === undefined) return { path, expected, actual };
  if (isNumber(expected) || isNumber(actual)) {
    const same = isNumber(expected) && isNumber(actual) && sameNumber(expected, actual);
    return same ? undefined : { path, expected, actual };
  }
  if (expected === null || typeof expected !== 'object' || actual === null || typeof actual !== 'object') {
    return expected === actual ? undefined : { path, expected, actual };
  }
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual)) return { path, expected, actual };
    const shared = Math.min(expected.length, actual.length);
    for (let i = 0; i < shared; i++) {
      const difference = firstDifference(expected[i] as JsonValue, actual[i], `${path}[${i}]`);
      if (difference) return difference;
    }
    if (expected.length === actual.length) return undefined;
    return { path: `${path}[${shared}]`, expected: expected[shared], actual: actual[shared] };
  }
  for (const name of Object.keys(expected)) {
    const member = expected[name] as JsonValue;
    const difference = firstDifference(
      member,
      Object.hasOwn(actual, name) ? actual[name] : undefined,
      fieldPath(path, name),
    );
    if (difference) return difference;
  }
  for (const name of Object.keys(actual)) {
    if (!Object.hasOwn(expected, name)) {
      return { path: fieldPath(path, name), expected: undefined, actual: actual[name] };
    }
  }
  return undefined;
}

/** `a.b` for plain names, `a["x.y"]` for names a dot path would misread. */
export function fieldPath(parent: string, name: string): string {
  if (/^[^.[\]"\s]+$/.test(name)) return parent === '' ? name : `${parent}.${name}`;
  return `${parent}[${JSON.stringify(name)}]`;
}

class Parser {
  pos = 0;
  private readonly names = new Map<string, string>();

  constructor(private readonly text: string) {}

  fail(reason: string): never {
    throw new ExactJsonSyntaxError(`invalid JSON at position ${this.pos}: ${reason}`);
  }

  skipWhitespace(): void {
    const code = this.text.charCodeAt(this.pos);
    // OpenSearch writes compact JSON: most calls find no whitespace at all.
    if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return;
    WHITESPACE.lastIndex = this.pos;
    WHITESPACE.exec(this.text);
    this.pos = WHITESPACE.lastIndex;
  }

  value(depth: number): ExactJson {
    if (depth > 1_000) this.fail('nested too deeply');
    const code = this.text.charCodeAt(this.pos);
    if (code === 0x7b) return this.object(depth);
    if (code === 0x5b) return this.array(depth);
    if (code === 0x22) return this.string();
    if (code === 0x2d || (code >= 0x30 && code <= 0x39)) return this.number();
    if (this.text.startsWith('true', this.pos)) return this.literal(4, true);
    if (this.text.startsWith('false', this.pos)) return this.literal(5, false);
    if (this.text.startsWith('null', this.pos)) return this.literal(4, null);
    return this.fail(
      Number.isNaN(code) ? 'unexpected end' : `unexpected ${JSON.stringify(this.text[this.pos])}`,
    );
  }

  private literal<T>(length: number, value: T): T {
    this.pos += length;
    return value;
  }

  private number(): JsonNumber {
    const start = this.pos;
    let end = start;
    // Runs of the characters a number may hold; NUMBER then checks the syntax once.
    for (;;) {
      const code = this.text.charCodeAt(end);
      if (
        (code >= 0x30 && code <= 0x39) ||
        code === 0x2d ||
        code === 0x2b ||
        code === 0x2e ||
        code === 0x65 ||
        code === 0x45
      ) {
        end += 1;
      } else {
        break;
      }
    }
    const text = this.text.slice(start, end);
    if (!NUMBER.test(text)) this.fail('malformed number');
    this.pos = end;
    return new JsonNumber(text);
  }

  private string(): string {
    const start = this.pos + 1;
    const quote = this.text.indexOf('"', start);
    if (quote < 0) this.fail('unterminated string');
    const raw = this.text.slice(start, quote);
    const backslash = raw.indexOf('\\');
    if (backslash < 0) {
      // The common case: no escape, so the text up to the next quote is the string.
      if (CONTROL.test(raw)) this.fail('control character in string');
      this.pos = quote + 1;
      return raw;
    }
    let end = start + backslash;
    for (;;) {
      const code = this.text.charCodeAt(end);
      if (code === 0x22) break;
      if (Number.isNaN(code)) {
        this.pos = end;
        this.fail('unterminated string');
      }
      end += code === 0x5c ? 2 : 1;
    }
    this.pos = end + 1;
    // Escapes are rare in documents; JSON.parse decodes them exactly (and rejects bad ones).
    try {
      return JSON.parse(this.text.slice(start - 1, end + 1)) as string;
    } catch (error) {
      this.pos = start;
      return this.fail((error as Error).message);
    }
  }

  /** Field names repeat from document to document: reuse one string per name. */
  private fieldName(): string {
    const read = this.string();
    const known = this.names.get(read);
    if (known !== undefined) return known;
    if (this.names.size < 10_000) this.names.set(read, read);
    return read;
  }

  private array(depth: number): ExactJson[] {
    this.pos += 1;
    const values: ExactJson[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos += 1;
      return values;
    }
    for (;;) {
      this.skipWhitespace();
      values.push(this.value(depth + 1));
      this.skipWhitespace();
      const code = this.text.charCodeAt(this.pos);
      this.pos += 1;
      if (code === 0x5d) return values;
      if (code !== 0x2c) {
        this.pos -= 1;
        this.fail('expected , or ]');
      }
    }
  }

  private object(depth: number): { [name: string]: ExactJson } {
    this.pos += 1;
    const object: { [name: string]: ExactJson } = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos += 1;
      return object;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a field name');
      const name = this.fieldName();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail('expected :');
      this.pos += 1;
      this.skipWhitespace();
      const member = this.value(depth + 1);
      // defineProperty: a field named __proto__ is data, not the prototype.
      Object.defineProperty(object, name, {
        value: member,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.skipWhitespace();
      const code = this.text.charCodeAt(this.pos);
      this.pos += 1;
      if (code === 0x7d) return object;
      if (code !== 0x2c) {
        this.pos -= 1;
        this.fail('expected , or }');
      }
    }
  }
}
