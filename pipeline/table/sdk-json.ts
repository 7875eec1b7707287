/**
 * Cheaper reads of DynamoDB's big answers (Scan pages, GetRecords pages)
 * through the AWS SDK v3 clients.
 *
 * - withoutLogCopy: the SDK's logger middleware rebuilds every response
 *   against its schema (to mask members marked sensitive) before it calls the
 *   logger, even the default logger that drops everything. DynamoDB's outputs
 *   have no sensitive members, so skipping that copy changes nothing a
 *   configured logger receives.
 * - sendForJson: on a 200 answer, the body is parsed once with JSON.parse and
 *   handed back as it came over the wire; the SDK's schema-driven deserializer,
 *   which rebuilds every attribute value of every item, reads only the small
 *   rest of the answer. An error answer is left to the SDK, so its exceptions
 *   (ResourceNotFoundException, throttling, ExpiredIteratorException, …) and
 *   retries are unchanged.
 *
 * docs/benchmarks.md has the figures: for 1 MB Scan pages the deserializer
 * was the largest single cost of the backfill's Node.js process, and the log
 * copy more than half of the client's CPU before that.
 *
 * DynamoDB's wire form of an attribute value is the SDK's, except that binary
 * values (B, BS) are base64 strings: decodeWireItem turns them into
 * Uint8Array in place.
 */
import type { Item } from './types';

type SdkHandler = (args: never) => Promise<unknown>;
type Step = 'initialize' | 'deserialize';

/** An AWS SDK command: its middleware stack can take one more step. */
export interface SdkCommand {
  middlewareStack: { add: (...args: never[]) => void };
}

/** The one form of `middlewareStack.add` used here (the SDK declares one overload per step). */
type AddMiddleware = (
  middleware: (next: SdkHandler, context: object) => SdkHandler,
  options: { step: Step; name: string; priority?: 'high' | 'normal' | 'low' },
) => void;

function addMiddleware(command: SdkCommand, ...args: Parameters<AddMiddleware>): void {
  (command.middlewareStack.add as unknown as AddMiddleware).apply(command.middlewareStack, args);
}

/** Spares a DynamoDB or DynamoDB Streams command the SDK's log copy of its answer. */
export function withoutLogCopy<C extends SdkCommand>(command: C): C {
  addMiddleware(
    command,
    (next, context) => (args) => {
      (context as { outputFilterSensitiveLog?: (output: unknown) => unknown }).outputFilterSensitiveLog = (
        output,
      ) => output;
      return next(args);
    },
    { step: 'initialize', name: 'ddb2osWithoutLogCopy' },
  );
  return command;
}

/** What sendForJson returns: the answer's JSON as sent, or (when it could not take the body over) the SDK's output. */
export type JsonOrOutput<J, O> = { json: J; output?: undefined } | { json?: undefined; output: O };

/**
 * Sends `command` with `send` and returns the 200 answer's JSON, parsed once,
 * without the SDK's deserializer (and without its log copy) reading the
 * `bulky` member (Items, Records). The SDK still deserializes the rest of the
 * answer (Count, ConsumedCapacity, LastEvaluatedKey, NextShardIterator, …),
 * so middleware and tracing that read the output still find them. When the
 * HTTP body is not a stream (another request handler), the SDK's output is
 * returned instead, so callers handle both forms.
 */
export async function sendForJson<J, C extends SdkCommand, O>(
  send: (command: C) => Promise<O>,
  command: C,
  bulky: string,
): Promise<JsonOrOutput<J, O>> {
  let json: J | undefined;
  let taken = false;
  addMiddleware(
    command,
    (next) => async (args) => {
      const result = (await next(args)) as { response?: { statusCode?: number; body?: unknown } };
      const response = result.response;
      const body = response?.body as AsyncIterable<Uint8Array> | undefined;
      if (response?.statusCode === 200 && typeof body?.[Symbol.asyncIterator] === 'function') {
        // Decoded chunk by chunk: each network buffer can go as soon as it is read, and no second copy
        // of the whole answer is made outside the JavaScript heap.
        const decoder = new TextDecoder();
        let text = '';
        for await (const chunk of body) text += decoder.decode(chunk, { stream: true });
        text += decoder.decode();
        const parsed = JSON.parse(text) as Record<string, unknown>;
        json = parsed as J;
        taken = true;
        // The SDK reads everything but the bulky member.
        const { [bulky]: _bulky, ...rest } = parsed;
        response.body = new Uint8Array(Buffer.from(JSON.stringify(rest)));
      }
      return result;
    },
    // The innermost step: it sees the HTTP answer before the SDK's deserializer does.
    { step: 'deserialize', priority: 'low', name: 'ddb2osAnswerAsJson' },
  );
  const output = await send(withoutLogCopy(command));
  return taken ? { json: json as J } : { output };
}

/** An attribute value as DynamoDB sends it (binary as base64). */
interface WireValue {
  B?: unknown;
  BS?: unknown[];
  M?: Record<string, WireValue>;
  L?: WireValue[];
}

/**
 * Turns an item parsed from DynamoDB's JSON into the SDK's form, in place:
 * B and BS become Uint8Array, inside M and L too. A value that is not what
 * DynamoDB sends is left alone, for the mapping to reject with a clear reason.
 * (JSON.parse keeps a member named `__proto__` as an ordinary member.)
 */
export function decodeWireItem(item: Record<string, unknown>): Item {
  for (const name of Object.keys(item)) decodeValue(item[name] as WireValue);
  return item as Item;
}

function decodeValue(value: WireValue): void {
  if (value === null || typeof value !== 'object') return;
  if (value.B !== undefined) value.B = base64Bytes(value.B);
  else if (value.BS !== undefined && Array.isArray(value.BS)) value.BS = value.BS.map(base64Bytes);
  else if (value.M !== undefined && typeof value.M === 'object' && value.M !== null) {
    for (const name of Object.keys(value.M)) decodeValue(value.M[name] as WireValue);
  } else if (value.L !== undefined && Array.isArray(value.L)) {
    for (const element of value.L) decodeValue(element);
  }
}

function base64Bytes(value: unknown): unknown {
  return typeof value === 'string' ? new Uint8Array(Buffer.from(value, 'base64')) : value;
}

/**
 * The reverse of decodeWireItem, as a JSON.stringify replacer: binary values
 * (Uint8Array) become base64 strings, DynamoDB's wire form, so items and
 * stream records written as JSON read back with decodeWireItem.
 */
export function binaryAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}
