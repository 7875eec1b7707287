/**
 * The updater's one question about an error: is the source or the sink
 * unavailable (retry the change, forever if need be, until the stream
 * expires it), or is it this change's own doing (dead-letter it with its
 * reason and go on)? Getting it wrong either way is costly: calling an outage
 * poison dead-letters every change made during it, and calling poison an
 * outage holds the whole shard back for a day. So "unavailable" is the
 * larger class: everything that is not plainly an answer about the request
 * itself.
 */
import { errors } from '@opensearch-project/opensearch';
import { isThrottling, isTransient } from '../scan/read-budget';

/** Network failures below any answer: the other end is away or the path to it is. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
]);

/**
 * DynamoDB answers about the caller's setup, not about one record: a missing
 * table, permissions, credentials. Fixing the setup lets the retries through.
 */
const SETUP_ERRORS = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'ExpiredTokenException',
  'InvalidSignatureException',
  'MissingAuthenticationTokenException',
  'CredentialsProviderError',
  'ResourceNotFoundException',
]);

/**
 * True when reading the current item (GetItem, Query) failed because
 * DynamoDB is busy, unreachable or refuses the caller, and retrying later
 * can succeed. False for an answer about the request itself (a
 * ValidationException for a key the table cannot hold) and for an exception
 * of our own code: those make the change poison.
 */
export function isSourceUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isThrottling(error) || isTransient(error) || SETUP_ERRORS.has(error.name)) return true;
  if (error.name === 'AbortError') return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * True when OpenSearch refused a whole bulk request for what it holds (HTTP
 * 400): some document of it is the cause, so the batch is bisected to find
 * it. Every other way the writer gives up (unreachable, 429, 5xx, 401, 403, a
 * cluster block) is the sink being unavailable: the batch is retried.
 */
export function isRequestRefusedForContent(error: unknown): boolean {
  const cause = error instanceof Error && !(error instanceof errors.ResponseError) ? error.cause : error;
  return cause instanceof errors.ResponseError && cause.statusCode === 400;
}
