import { describe, expect, it } from 'vitest';
import { MappingError } from '../../../pipeline/errors.js';
import { compareDecimals, parseDecimal, toPlainString } from '../../../pipeline/mapping/decimal.js';
import { attributeToJson, keyToString } from '../../../pipeline/mapping/mapping.js';

const n = (value: string) => attributeToJson({ N: value });

describe('N in ids: plain decimal form', () => {
  it.each([
    ['1E+3', '1000'],
    ['1e3', '1000'],
    ['1.50', '1.5'],
    ['-0', '0'],
    ['-0.000', '0'],
    ['+7', '7'],
    ['0.000001e-2', '0.00000001'],
    ['00120.0', '120'],
    ['.5', '0.5'],
    ['5.', '5'],
    ['-12.340E1', '-123.4'],
    ['1E-130', `0.${'0'.repeat(129)}1`],
    [
      '9.9999999999999999999999999999999999999E+125',
      `99999999999999999999999999999999999999${'0'.repeat(88)}`,
    ],
    ['12345678901234567890123456789012345678', '12345678901234567890123456789012345678'],
  ])('%s → %s', (input, expected) => {
    expect(keyToString({ N: input })).toBe(expected);
  });

  it.each(['', '-', '.', 'abc', '1e', '1.2.3', '0x10', ' 1', 'NaN', 'Infinity', '1e+'])(
    'rejects %j with a MappingError',
    (input) => {
      expect(() => keyToString({ N: input })).toThrow(MappingError);
    },
  );

  it('rejects numbers outside DynamoDB range instead of writing a huge string', () => {
    expect(() => keyToString({ N: '1E-131' })).toThrow(/outside DynamoDB's number range/);
    expect(() => keyToString({ N: '1E+126' })).toThrow(/outside DynamoDB's number range/);
    expect(() => keyToString({ N: '1e999999999999' })).toThrow(MappingError);
  });
});

describe('N in bodies: a JSON number only when exact, else the exact plain string', () => {
  it('keeps safe integers as numbers, up to ±(2^53−1)', () => {
    expect(n('0')).toBe(0);
    expect(n('42')).toBe(42);
    expect(n('9007199254740991')).toBe(9007199254740991);
    expect(n('-9007199254740991')).toBe(-9007199254740991);
    expect(n('9.007199254740991E+15')).toBe(9007199254740991);
  });

  it('writes integers beyond 2^53−1 as exact strings', () => {
    expect(n('9007199254740992')).toBe('9007199254740992');
    expect(n('-9007199254740992')).toBe('-9007199254740992');
    expect(n('12345678901234567890123456789012345678')).toBe('12345678901234567890123456789012345678');
    expect(n('1E+30')).toBe('1000000000000000000000000000000');
    expect(n('1E+16')).toBe('10000000000000000');
  });

  it('never writes -0', () => {
    expect(Object.is(n('-0'), 0)).toBe(true);
    expect(Object.is(n('-0.0e5'), 0)).toBe(true);
  });

  it('keeps decimals of at most 15 significant digits as numbers', () => {
    expect(n('1.5')).toBe(1.5);
    expect(n('1.50')).toBe(1.5);
    expect(n('-0.1')).toBe(-0.1);
    expect(n('123456789.012345')).toBe(123456789.012345);
    expect(n('0.000000000000000000123456789012345')).toBe(1.23456789012345e-19);
    expect(n('1E-130')).toBe(1e-130);
    expect(n('-9.99999999999999E-130')).toBe(-9.99999999999999e-130);
  });

  it('writes decimals of 16 or more significant digits as exact strings, never rounded', () => {
    expect(n('0.1000000000000001')).toBe('0.1000000000000001');
    expect(n('1234567.890123456')).toBe('1234567.890123456');
    expect(n('3.14159265358979323846264338327950288')).toBe('3.14159265358979323846264338327950288');
    expect(n('1.234567890123456E-120')).toBe(`0.${'0'.repeat(119)}1234567890123456`);
  });

  it('counts significant digits after stripping trailing zeros', () => {
    expect(n('1.500000000000000000000')).toBe(1.5);
    expect(n('0.000000000000000000000000001')).toBe(1e-27);
  });

  it('prints no exponent in string form', () => {
    const huge = n('9.9999999999999999999999999999999999999E+125');
    expect(huge).toBe(`99999999999999999999999999999999999999${'0'.repeat(88)}`);
    expect(String(huge)).not.toMatch(/e/i);
  });

  it('a 15-digit decimal round-trips through a double and JSON unchanged (property, 20,000 cases)', () => {
    let seed = 20240509;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 20_000; i++) {
      const length = 1 + Math.floor(random() * 15);
      let digits = String(1 + Math.floor(random() * 9));
      while (digits.length < length) digits += String(Math.floor(random() * 10));
      const exponent = -1 - Math.floor(random() * 120);
      const literal = `${random() < 0.5 ? '-' : ''}${digits}E${exponent}`;

      const value = n(literal);
      expect(typeof value, literal).toBe('number');
      const back = JSON.parse(JSON.stringify(value)) as number;
      expect(toPlainString(parseDecimal(String(back))!), literal).toBe(keyToString({ N: literal }));
    }
  });
});

describe('NS elements follow the N rule', () => {
  it('maps each element on its own', () => {
    expect(attributeToJson({ NS: ['1E+3', '9007199254740993', '0.1', '-0'] })).toEqual([
      1000,
      '9007199254740993',
      0.1,
      0,
    ]);
  });
});

describe('compareDecimals (sort key order for aggregation)', () => {
  const sorted = [
    '-1E+5',
    '-10',
    '-1.5',
    '-0.001',
    '0',
    '1E-130',
    '0.5',
    '1',
    '1.0000000000000000000001',
    '10',
    '1E+125',
  ];
  it('orders by value, not by text', () => {
    const shuffled = [...sorted].reverse();
    shuffled.sort((a, b) => compareDecimals(parseDecimal(a)!, parseDecimal(b)!));
    expect(shuffled).toEqual(sorted);
  });

  it('treats equal values in different spellings as equal', () => {
    expect(compareDecimals(parseDecimal('1E+3')!, parseDecimal('1000.00')!)).toBe(0);
    expect(compareDecimals(parseDecimal('-0')!, parseDecimal('0')!)).toBe(0);
  });
});
