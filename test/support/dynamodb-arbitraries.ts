/**
 * fast-check generators of DynamoDB items as a user can write them: every
 * attribute type, numbers in every textual form DynamoDB accepts and across
 * its whole range, nesting, empty strings, maps and lists, unicode (astral,
 * combining), binary, names with dots, `__proto__`, and keys holding `|` and
 * `\`. What DynamoDB refuses is never generated (empty sets, duplicate set
 * members, more than 38 significant digits, lone surrogates), so a failure
 * is a mapping failure, not a refused write.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { compareDecimals, parseDecimal, toPlainString } from '../../pipeline/mapping/decimal';
import type { Item } from '../../pipeline/table/types';

export type KeyType = 'S' | 'N' | 'B';

/** Characters that break naive id or path schemes, mixed with astral and combining ones. */
const TRICKY = ['|', '\\', '.', '#', ' ', '"', 'a', 'Z', '0', 'é', 'e\u0301', '😀', '𝄞', '\u0000', '\n'];

/** Strings: plain, any code point but lone surrogates, grapheme clusters, and the tricky characters above. */
export function text(constraints: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<string> {
  const { minLength = 0, maxLength = 12 } = constraints;
  return fc.oneof(
    fc.string({ minLength, maxLength, unit: fc.constantFrom(...TRICKY) }),
    fc.string({ minLength, maxLength, unit: 'binary' }),
    fc.string({ minLength, maxLength, unit: 'grapheme' }),
    fc.string({ minLength, maxLength }),
  );
}

/** Attribute and map member names: never empty (DynamoDB refuses that), sometimes `__proto__` or dotted. */
export const attributeName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: text({ minLength: 1, maxLength: 8 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'a.b', 'a.b.c', '.', '|', '\\', '_id'),
  },
);

/** DynamoDB's largest and smallest magnitudes, and a few numbers a double would round. */
const NOTABLE_NUMBERS = [
  '0',
  '-0',
  '9.9999999999999999999999999999999999999E+125',
  '-9.9999999999999999999999999999999999999E+125',
  '1E-130',
  '-1E-130',
  '12345678901234567890123456789012345678',
  '-0.12345678901234567890123456789012345678',
  '9007199254740993',
  '9007199254740991',
  '0.1',
  '1E+3',
  '.5',
  '5.',
  '007',
  '+5',
  '1.50',
];

/**
 * A number as DynamoDB accepts it: up to 38 significant digits, magnitude
 * from 1E-130 to below 1E+126, written plain, with an exponent (`E+5`,
 * `e-7`), with leading or trailing zeros, or with a `+` sign.
 */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...NOTABLE_NUMBERS) },
  {
    weight: 6,
    arbitrary: fc
      .record({
        negative: fc.boolean(),
        digits: fc.oneof(
          fc.stringMatching(/^[1-9]\d{0,3}$/),
          fc.stringMatching(/^[1-9]\d{0,14}$/),
          fc.stringMatching(/^[1-9]\d{15,37}$/),
        ),
        power: fc.oneof(fc.integer({ min: -6, max: 20 }), fc.integer({ min: -130, max: 125 })),
        form: fc.constantFrom('plain', 'exponent', 'lower-e', 'padded', 'plus'),
      })
      .map(({ negative, digits, power, form }) =>
        renderNumber(negative, digits.replace(/0+$/, ''), power, form),
      ),
  },
);

function renderNumber(negative: boolean, digits: string, power: number, form: string): string {
  const sign = negative ? '-' : '';
  const exponent = power - digits.length + 1;
  const plain = toPlainString({ negative, digits, exponent });
  switch (form) {
    case 'exponent':
      return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}E${power >= 0 ? '+' : ''}${power}`;
    case 'lower-e':
      return `${sign}${digits}e${exponent}`;
    case 'padded': {
      const body = negative ? plain.slice(1) : plain;
      // A trailing zero after the point counts as a digit only while it stays within 38 of them.
      const padded = body.includes('.') && digits.length < 38 ? `${body}0` : body;
      return `${sign}00${padded}`;
    }
    case 'plus':
      return negative ? plain : `+${plain}`;
    default:
      return plain;
  }
}

const bytes = (minLength: number) => fc.uint8Array({ minLength, maxLength: 16 });

/** A key attribute's value of the given type (never empty: DynamoDB refuses an empty key). */
export function keyValue(type: KeyType): fc.Arbitrary<AttributeValue> {
  if (type === 'N') return numberText.map((N) => ({ N }));
  if (type === 'B') return bytes(1).map((B) => ({ B }));
  return text({ minLength: 1, maxLength: 16 }).map((S) => ({ S }));
}

/** Two keys are one item in DynamoDB: S by string, N by value, B by bytes. */
export function sameKeyValue(a: AttributeValue, b: AttributeValue): boolean {
  if (a.S !== undefined || b.S !== undefined) return a.S === b.S;
  if (a.N !== undefined && b.N !== undefined)
    return compareDecimals(parseDecimal(a.N)!, parseDecimal(b.N)!) === 0;
  if (a.B !== undefined && b.B !== undefined) return Buffer.compare(Buffer.from(a.B), Buffer.from(b.B)) === 0;
  return false;
}

/** Set members DynamoDB accepts: unique, NS unique by value. */
const stringSet = fc.uniqueArray(text({ minLength: 1 }), { minLength: 1, maxLength: 5 });
const numberSet = fc.uniqueArray(numberText, {
  minLength: 1,
  maxLength: 5,
  comparator: (a, b) => compareDecimals(parseDecimal(a)!, parseDecimal(b)!) === 0,
});
const binarySet = fc.uniqueArray(bytes(1), {
  minLength: 1,
  maxLength: 5,
  comparator: (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0,
});

/** Builds an object whose members may be named `__proto__` and stay data. */
export function record<T>(entries: [string, T][]): Record<string, T> {
  const object: Record<string, T> = {};
  for (const [name, value] of entries) {
    Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return object;
}

const members = <T>(value: fc.Arbitrary<T>, maxLength: number) =>
  fc.uniqueArray(fc.tuple(attributeName, value), { maxLength, selector: ([name]) => name }).map(record);

/** Any attribute value, M and L nested up to `maxDepth` levels. */
export function attributeValue(maxDepth = 6): fc.Arbitrary<AttributeValue> {
  const { value } = fc.letrec<{ value: AttributeValue }>((tie) => ({
    value: fc.oneof(
      { maxDepth, depthSize: 'medium', withCrossShrink: true },
      text().map((S) => ({ S })),
      numberText.map((N) => ({ N })),
      bytes(0).map((B) => ({ B })),
      fc.boolean().map((BOOL) => ({ BOOL })),
      fc.constant({ NULL: true as const }),
      stringSet.map((SS) => ({ SS })),
      numberSet.map((NS) => ({ NS })),
      binarySet.map((BS) => ({ BS })),
      // Weighted so that a good share of items nest four to six levels deep.
      { weight: 4, arbitrary: members(tie('value'), 4).map((M) => ({ M })) },
      { weight: 4, arbitrary: fc.array(tie('value'), { maxLength: 4 }).map((L) => ({ L })) },
    ),
  }));
  return value;
}

/** An item of a table with these keys: the key attributes plus up to `maxAttributes` others. */
export function item(
  keys: { partitionKey: string; partitionType: KeyType; sortKey?: string; sortType?: KeyType },
  maxAttributes = 8,
): fc.Arbitrary<Item> {
  const names = [keys.partitionKey, keys.sortKey].filter((name) => name !== undefined);
  return fc
    .record({
      partition: keyValue(keys.partitionType),
      sort: keys.sortKey === undefined ? fc.constant(undefined) : keyValue(keys.sortType ?? 'S'),
      rest: fc.uniqueArray(
        fc.tuple(
          attributeName.filter((name) => !names.includes(name)),
          attributeValue(),
        ),
        { maxLength: maxAttributes, selector: ([name]) => name },
      ),
    })
    .map(({ partition, sort, rest }) => {
      const entries: [string, AttributeValue][] = [[keys.partitionKey, partition], ...rest];
      if (keys.sortKey !== undefined && sort !== undefined) entries.push([keys.sortKey, sort]);
      return record(entries);
    });
}

/** M and L alternating `depth` levels deep around a string (DynamoDB allows 32 levels). */
export function nestedValue(depth: number): AttributeValue {
  let value: AttributeValue = { S: `level ${depth}` };
  for (let level = depth; level > 0; level--) {
    value =
      level % 2 === 0
        ? { L: [value, { N: String(level) }] }
        : { M: { [`m${level}`]: value, 'a.b': { NULL: true } } };
  }
  return value;
}
