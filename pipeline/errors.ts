/**
 * Typed errors. Every error that reaches a user is one clear sentence that
 * names the problem; the underlying error travels as `cause`.
 */
export class BackfillError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackfillError';
  }
}

/** A setting, workflow input or mapping configuration is invalid. Never retried. */
export class ConfigurationError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigurationError';
  }
}

/** A segment message (SQS body) is malformed. Never retried. */
export class InvalidMessageError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidMessageError';
  }
}

/** A stream record lacks what every DynamoDB stream record carries (event name, sequence number, keys). */
export class InvalidStreamRecordError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidStreamRecordError';
  }
}

/** An item cannot be turned into a document (dead-lettered, never fails a segment). */
export class MappingError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MappingError';
  }
}

/** The source table is missing or unusable (wrong key schema, no stream). Never retried. */
export class SourceTableError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceTableError';
  }
}

/** The updater's change source (a Kinesis data stream, an SQS queue) is missing or cannot be read. */
export class ChangeSourceError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChangeSourceError';
  }
}

/** OpenSearch could not be reached or kept failing after every retry. Retryable by the workflow. */
export class SinkUnavailableError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkUnavailableError';
  }
}

/** Another invocation owns this segment's checkpoint (a duplicate message); this one stands down. */
export class CheckpointConflictError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointConflictError';
  }
}

/** The watchdog or the deploy guard could not read the updater's mapping, the run lock or the lock holder's execution. */
export class UpdaterCheckError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpdaterCheckError';
  }
}

/** The backfill ran longer than the stream retention budget allows. */
export class RetentionBudgetExceededError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetentionBudgetExceededError';
  }
}

/** One line for a person: the message, and the cause's message when it adds something. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  return cause && !error.message.includes(cause) ? `${error.message} (${cause})` : error.message;
}

/** Another run holds the table's run lock (one backfill per table at a time). Never retried. */
export class RunLockedError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunLockedError';
  }
}
