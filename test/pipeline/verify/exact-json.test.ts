import { describe, expect, it } from 'vitest';
import {
  type ExactJson,
  firstDifference,
  JsonNumber,
  parseExactJson,
  stringifyExact,
} from '../../../pipeline/verify/exact-json';

describe('parseExactJson', () => {
  it('keeps every digit of a number that a double would round', () => {
    const value = parseExactJson('{"n": 9007199254740993, "x": 0.10000000000000001, "e": -1.5E+300}');

    expect(stringifyExact(value)).toBe('{"n":9007199254740993,"x":0.10000000000000001,"e":-1.5E+300}');
  });

  it('reads everything JSON.parse reads the same way (numbers aside)', () => {
    const text =
      '{"s":"a\\"b\\\\c\\u00e9\\n😀","t":true,"f":false,"z":null,"a":[1,[],{}],"o":{"k":{"__proto__":1}},"": 2}';

    const value = parseExactJson(text) as Record<string, ExactJson>;

    expect(value.s).toBe('a"b\\cé\n😀');
    expect(value.t).toBe(true);
    expect(value.z).toBeNull();
    expect(Object.keys((value.o as Record<string, ExactJson>).k as object)).toEqual(['__proto__']);
    expect(JSON.parse(stringifyExact(value))).toEqual(JSON.parse(text));
  });

  it('rejects malformed JSON with the position', () => {
    for (const text of ['{"a":1,}', '[1 2]', '{"a"}', '"open', '01', 'nul', '{"a":1} x']) {
      expect(() => parseExactJson(text), text).toThrow(/invalid JSON at position \d+/);
    }
  });
});

describe('firstDifference', () => {
  const parse = parseExactJson;

  it('sees no difference in key order or in how an equal number is written', () => {
    expect(firstDifference(parse('{"a":1.5,"b":[1,2]}'), parse('{"b":[1,2.0],"a":15e-1}'))).toBeUndefined();
  });

  it('names the first differing field with both values, deep', () => {
    const difference = firstDifference(
      parse('{"pk":"o#1","lines":[{"qty":1},{"qty":2}]}'),
      parse('{"pk":"o#1","lines":[{"qty":1},{"qty":3}]}'),
    );

    expect(difference?.path).toBe('lines[1].qty');
    expect(stringifyExact(difference?.expected as ExactJson)).toBe('2');
    expect(stringifyExact(difference?.actual as ExactJson)).toBe('3');
  });

  it('tells a big number from its rounded double, and a number from its string', () => {
    expect(firstDifference(parse('{"n":9007199254740993}'), parse('{"n":9007199254740992}'))?.path).toBe('n');
    expect(firstDifference(parse('{"n":"9007199254740993"}'), parse('{"n":9007199254740993}'))?.path).toBe(
      'n',
    );
    expect(firstDifference(parse('{"x":0.1}'), parse('{"x":0.10000000000000001}'))?.path).toBe('x');
  });

  it('reports a field absent on either side, and arrays of another length', () => {
    expect(firstDifference(parse('{"a":1,"b":2}'), parse('{"a":1}'))).toEqual({
      path: 'b',
      expected: new JsonNumber('2'),
      actual: undefined,
    });
    expect(firstDifference(parse('{"a":1}'), parse('{"a":1,"c.d":3}'))?.path).toBe('["c.d"]');
    expect(firstDifference(parse('{"t":["x"]}'), parse('{"t":["x","y"]}'))?.path).toBe('t[1]');
  });
});
