/**
 * Exact decimal arithmetic on DynamoDB number strings. DynamoDB numbers carry
 * up to 38 significant digits, far more than a JS double, so everything here
 * works on the digit string and never goes through floating point.
 */

/** A decimal as `(-1)^negative × digits × 10^exponent`, with no leading or trailing zeros in `digits`. */
export interface Decimal {
  negative: boolean;
  /** Significant digits; '' for zero. */
  digits: string;
  exponent: number;
}

const DECIMAL_SYNTAX = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Reads a decimal literal (`-1.50`, `1E+3`, `.5`); undefined when the text is not one. Zero is never negative. */
export function parseDecimal(text: string): Decimal | undefined {
  const match = DECIMAL_SYNTAX.exec(text);
  if (!match) return undefined;
  const whole = match[2] ?? '';
  const fraction = match[3] ?? '';
  if (whole.length + fraction.length === 0) return undefined;
  const written = Number(match[4] ?? '0');
  if (!Number.isSafeInteger(written)) return undefined;

  let digits = (whole + fraction).replace(/^0+/, '');
  const significant = digits.replace(/0+$/, '');
  const exponent = written - fraction.length + (digits.length - significant.length);
  digits = significant;
  if (digits === '') return { negative: false, digits: '', exponent: 0 };
  return { negative: match[1] === '-', digits, exponent };
}

/** The power of ten of the most significant digit (`123` → 2, `0.05` → -2); undefined for zero. */
export function magnitude(value: Decimal): number | undefined {
  return value.digits === '' ? undefined : value.exponent + value.digits.length - 1;
}

/** Plain decimal form, never an exponent: `1E+3` → `1000`, `1.50` → `1.5`, `-0` → `0`. */
export function toPlainString(value: Decimal): string {
  const { digits, exponent } = value;
  if (digits === '') return '0';
  const sign = value.negative ? '-' : '';
  if (exponent >= 0) return sign + digits + '0'.repeat(exponent);
  const point = digits.length + exponent;
  if (point > 0) return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${sign}0.${'0'.repeat(-point)}${digits}`;
}

const MAX_SAFE_INTEGER = String(Number.MAX_SAFE_INTEGER);

/** True when the value is an integer that a JS number holds exactly: |n| ≤ 2^53−1. */
export function isSafeInteger(value: Decimal): boolean {
  if (value.exponent < 0) return false;
  const length = value.digits.length + value.exponent;
  if (length !== MAX_SAFE_INTEGER.length) return length < MAX_SAFE_INTEGER.length;
  return value.digits + '0'.repeat(value.exponent) <= MAX_SAFE_INTEGER;
}

/**
 * The longest significant-digit count that always survives decimal → double →
 * shortest decimal unchanged (DBL_DIG).
 */
export const ROUND_TRIP_DIGITS = 15;

/**
 * The value as a JS number when that is exact in the sense that matters to a
 * reader of the JSON (a safe integer, or a fraction of at most 15 significant
 * digits, which prints back as the same digits); otherwise undefined.
 */
export function toExactNumber(value: Decimal): number | undefined {
  if (value.digits === '') return 0;
  if (isSafeInteger(value)) return Number(toPlainString(value));
  if (value.exponent < 0 && value.digits.length <= ROUND_TRIP_DIGITS) {
    return Number(`${value.negative ? '-' : ''}${value.digits}e${value.exponent}`);
  }
  return undefined;
}

/** Numeric order of two decimals: negative, zero or positive like a sort comparator. */
export function compareDecimals(a: Decimal, b: Decimal): number {
  const signA = a.digits === '' ? 0 : a.negative ? -1 : 1;
  const signB = b.digits === '' ? 0 : b.negative ? -1 : 1;
  if (signA !== signB) return signA - signB;
  if (signA === 0) return 0;
  return signA * compareMagnitudes(a, b);
}

function compareMagnitudes(a: Decimal, b: Decimal): number {
  const byPower = magnitude(a)! - magnitude(b)!;
  if (byPower !== 0) return Math.sign(byPower);
  // Same leading power: the digit strings line up from the left.
  const width = Math.max(a.digits.length, b.digits.length);
  const left = a.digits.padEnd(width, '0');
  const right = b.digits.padEnd(width, '0');
  return left < right ? -1 : left > right ? 1 : 0;
}
