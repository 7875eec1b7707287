/**
 * DynamoDB attribute values (wire form) → JSON that OpenSearch stores exactly.
 * The rules are written for users in docs/mapping.md; keep the two in step.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { MappingError } from '../errors.js';
import type { Item } from '../table/types.js';
import { type Decimal, magnitude, parseDecimal, toExactNumber, toPlainString } from './decimal.js';

/** DynamoDB's number range: magnitudes from 1E-130 to 9.99…E+125. */
const SMALLEST_POWER = -130;
const LARGEST_POWER = 125;

/**
 * One attribute value as JSON: S → string, N → number or exact plain decimal
 * string, BOOL → boolean, NULL → null, M → object, L → array, SS/NS/BS →
 * arrays, B → base64. Throws MappingError for a value it cannot read.
 */
export function attributeToJson(value: AttributeValue): unknown {
  return valueToJson(value, 'value');
}

/** Every attribute of the item, and nothing else, as a JSON object. */
export function toDocumentBody(item: Item): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) setField(body, name, valueToJson(value, name));
  return body;
}

/** A key attribute's value as a document id part: S as it is, N in plain decimal form, B as base64. */
export function keyToString(value: AttributeValue): string {
  return keyPart(value, 'key');
}

/** Like keyToString, with the attribute's name in the error. */
export function keyPart(value: AttributeValue | undefined, name: string): string {
  if (value === undefined || value === null) throw new MappingError(`the item has no key attribute ${name}`);
  if (typeof value.S === 'string') return value.S;
  if (value.N !== undefined) return plainNumber(value.N, name);
  if (value.B !== undefined) return base64(value.B, name);
  throw new MappingError(`key attribute ${name} is ${describeType(value)}, not S, N or B`);
}

/** An N value in plain decimal form (`1E+3` → `1000`). Throws MappingError when it is not a DynamoDB number. */
export function plainNumber(text: unknown, path: string): string {
  return toPlainString(readNumber(text, path));
}

/** An N value as the exact decimal it denotes. Throws MappingError when it is not a DynamoDB number. */
export function readNumber(text: unknown, path: string): Decimal {
  const value = typeof text === 'string' ? parseDecimal(text) : undefined;
  if (value === undefined) throw new MappingError(`${path}: ${JSON.stringify(text)} is not a number`);
  const power = magnitude(value);
  if (power !== undefined && (power < SMALLEST_POWER || power > LARGEST_POWER)) {
    throw new MappingError(`${path}: ${text} is outside DynamoDB's number range (1E-130 to 9.9E+125)`);
  }
  return value;
}

/**
 * Binary as base64. The SDK hands binary over as Uint8Array; a Lambda stream
 * event carries it already base64-encoded as a string, which is kept as it is.
 */
export function base64(value: unknown, path: string): string {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (typeof value === 'string') return value;
  throw new MappingError(`${path}: binary value is neither a Uint8Array nor a base64 string`);
}

function valueToJson(value: AttributeValue, path: string): unknown {
  if (value === null || typeof value !== 'object') {
    throw new MappingError(`${path}: ${JSON.stringify(value)} is not an attribute value`);
  }
  if (value.S !== undefined) return expectString(value.S, path);
  if (value.N !== undefined) return numberToJson(value.N, path);
  if (value.BOOL !== undefined) return expectBoolean(value.BOOL, path);
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return mapToJson(value.M, path);
  if (value.L !== undefined)
    return expectArray(value.L, path).map((element, i) => valueToJson(element, `${path}[${i}]`));
  if (value.SS !== undefined)
    return expectArray(value.SS, path).map((s, i) => expectString(s, `${path}[${i}]`));
  if (value.NS !== undefined)
    return expectArray(value.NS, path).map((n, i) => numberToJson(n, `${path}[${i}]`));
  if (value.BS !== undefined) return expectArray(value.BS, path).map((b, i) => base64(b, `${path}[${i}]`));
  if (value.B !== undefined) return base64(value.B, path);
  throw new MappingError(`${path}: ${describeType(value)} is not a DynamoDB type that ddb2os maps`);
}

function numberToJson(text: unknown, path: string): number | string {
  const value = readNumber(text, path);
  return toExactNumber(value) ?? toPlainString(value);
}

function mapToJson(map: Record<string, AttributeValue>, path: string): Record<string, unknown> {
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new MappingError(`${path}: M value is not an object`);
  }
  const object: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(map))
    setField(object, name, valueToJson(member, `${path}.${name}`));
  return object;
}

/** Plain assignment would turn a `__proto__` attribute into the object's prototype; it is data here. */
function setField(object: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__') {
    Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[name] = value;
  }
}

function expectString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new MappingError(`${path}: S value is not a string`);
  return value;
}

function expectBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new MappingError(`${path}: BOOL value is not a boolean`);
  return value;
}

function expectArray<T>(value: T[], path: string): T[] {
  if (!Array.isArray(value)) throw new MappingError(`${path}: set or list value is not an array`);
  return value;
}

function describeType(value: AttributeValue): string {
  const unknown = (value as { $unknown?: [string, unknown] }).$unknown;
  if (Array.isArray(unknown)) return `of unknown type ${unknown[0]}`;
  const names = Object.keys(value).filter(
    (name) => (value as unknown as Record<string, unknown>)[name] !== undefined,
  );
  return names.length === 0 ? 'empty' : `of type ${names.join('+')}`;
}
