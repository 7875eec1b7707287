/** AWS errors as one sentence for the operator; the SDK error travels as the cause. */
import { BackfillError } from '../../pipeline/errors';
import { UsageError } from '../cli-error';
import type { AwsTarget } from './aws';

/** An AWS call failed; the message is one sentence for the operator, the SDK error is the cause. */
export class CloudError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CloudError';
  }
}

/** DescribeExecution answered ExecutionDoesNotExist. */
export class ExecutionNotFoundError extends CloudError {
  constructor(executionArn: string, region: string) {
    super(`execution ${executionArn} not found in ${region}`);
    this.name = 'ExecutionNotFoundError';
  }
}

/** The `name` of anything thrown: where the SDK puts the exception it answered with. */
export function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'name' in error
    ? String((error as { name: unknown }).name)
    : undefined;
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The errors every AWS call can meet (credentials, expired tokens, access
 * denied) as one sentence. Anything else keeps its own message, prefixed with
 * the error's name so that it can be looked up.
 */
export function explainAwsError(error: unknown, target: AwsTarget): Error {
  if (error instanceof CloudError || error instanceof UsageError) return error;
  const name = errorName(error) ?? 'Error';
  const message = errorMessage(error);
  if (name === 'CredentialsProviderError') {
    return new CloudError(
      target.profile
        ? `no usable AWS credentials for profile "${target.profile}": ${message}`
        : 'no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile',
    );
  }
  if (/ExpiredToken|TokenRefreshRequired/.test(name) || /token.*expired/i.test(message)) {
    return new CloudError(
      `the AWS credentials have expired${target.profile ? ` (profile ${target.profile})` : ''}: refresh them (e.g. aws sso login) and try again`,
    );
  }
  if (/UnrecognizedClient|InvalidClientTokenId|InvalidSignature|SignatureDoesNotMatch/.test(name)) {
    return new CloudError(`AWS rejected the credentials in ${target.region}: ${message}`);
  }
  if (/AccessDenied/.test(name)) {
    return new CloudError(`access denied in ${target.region}: ${message}`);
  }
  if (name === 'AbortError') return error as Error;
  return new CloudError(`${name}: ${message}`, { cause: error });
}
