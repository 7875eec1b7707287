/**
 * Where the updater takes the table's changes from: the names the stack
 * (`changeSource` prop, `-c changeSource=…`) and the run-lock function
 * (DDB2OS_CHANGE_SOURCE, to read the source's retention) share.
 */

/** The change sources, the first being the default. */
export const CHANGE_SOURCES = ['dynamodb-stream', 'kinesis', 'sqs'] as const;

/**
 * - `dynamodb-stream`: the table's own DynamoDB stream (keeps 24 hours).
 * - `kinesis`: a Kinesis data stream the table streams to (Kinesis Data
 *   Streams for DynamoDB; keeps 24 hours to 365 days).
 * - `sqs`: an SQS queue that a fan-out (EventBridge Pipes, SNS, an
 *   EventBridge rule) fills with the table's stream records (keeps 1 minute
 *   to 14 days).
 */
export type ChangeSourceKind = (typeof CHANGE_SOURCES)[number];

/** Whether `value` names a change source. */
export function isChangeSourceKind(value: unknown): value is ChangeSourceKind {
  return (CHANGE_SOURCES as readonly unknown[]).includes(value);
}

/**
 * Where changes wait while the updater is paused, and for how long, per
 * change source: the alarm descriptions and the watchdog's findings say it.
 */
export const WHERE_CHANGES_WAIT: Record<ChangeSourceKind, string> = {
  'dynamodb-stream': 'the stream, which keeps them for 24 hours',
  kinesis: 'the Kinesis stream, which keeps them for its retention period',
  sqs: 'the change queue, which keeps them for its message retention period',
};

/** The change source an event source mapping reads, by its ARN's service (a DynamoDB stream when unknown). */
export function changeSourceOfArn(eventSourceArn: string | undefined): ChangeSourceKind {
  const service = eventSourceArn?.split(':')[2];
  return service === 'kinesis' ? 'kinesis' : service === 'sqs' ? 'sqs' : 'dynamodb-stream';
}
