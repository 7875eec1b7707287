/**
 * The names of the environment variables that the CDK stack sets and the
 * Lambda handlers read (through pipeline/lambda/config.ts). Both take the
 * names from here, so a rename cannot drift between the two.
 */
export const ENV = {
  /** DynamoDB table that is backfilled and followed. */
  TABLE_NAME: 'DDB2OS_TABLE_NAME',
  /** Default OpenSearch index (the mapping's `index`). */
  INDEX_NAME: 'DDB2OS_INDEX_NAME',
  /** OpenSearch endpoint URL, `https://…` on AWS, `http://127.0.0.1:9200` locally. */
  OPENSEARCH_ENDPOINT: 'DDB2OS_OPENSEARCH_ENDPOINT',
  /** SigV4 service name: `es` (managed domain, default) or `aoss` (Serverless); `none` for no signing. */
  OPENSEARCH_SIGNING: 'DDB2OS_OPENSEARCH_SIGNING',
  /** DynamoDB progress table: checkpoints, the run lock, and the resync state (which the updater reads per batch). */
  PROGRESS_TABLE: 'DDB2OS_PROGRESS_TABLE',
  /** SQS queue that carries segment messages (the worker re-sends continuations to it). */
  SEGMENT_QUEUE_URL: 'DDB2OS_SEGMENT_QUEUE_URL',
  /** S3 bucket that receives dead-letter records (bad items with their reasons). */
  DEAD_LETTER_BUCKET: 'DDB2OS_DEAD_LETTER_BUCKET',
  /** S3 bucket where the planner writes large segment lists for the Map's item reader. */
  PLAN_BUCKET: 'DDB2OS_PLAN_BUCKET',
  /** JSON of the mapping configuration (see `MappingConfig`), without `index`, which comes from INDEX_NAME. */
  MAPPING: 'DDB2OS_MAPPING',
  /** Upper bound of one bulk request's body in bytes (default 5 MiB). */
  BULK_MAX_BYTES: 'DDB2OS_BULK_MAX_BYTES',
  /** Upper bound of documents in one bulk request (default 5,000). */
  BULK_MAX_DOCS: 'DDB2OS_BULK_MAX_DOCS',
  /** Target table bytes per segment for the planner (default 256 MiB). */
  TARGET_SEGMENT_BYTES: 'DDB2OS_TARGET_SEGMENT_BYTES',
  /** Milliseconds of Lambda time kept in reserve: below it the worker hands the segment on. */
  TIME_RESERVE_MS: 'DDB2OS_TIME_RESERVE_MS',
  /** UUID of the updater's event source mapping (the run-lock function, the watchdog and the deploy guard read its state). */
  UPDATER_MAPPING_UUID: 'DDB2OS_UPDATER_MAPPING_UUID',
  /** Name of the updater function (its IteratorAge metric's dimension). */
  UPDATER_FUNCTION_NAME: 'DDB2OS_UPDATER_FUNCTION_NAME',
  /** Endpoint override for DynamoDB (local runs and tests only). */
  DYNAMODB_ENDPOINT: 'DYNAMODB_ENDPOINT',
  /** Powertools service name. */
  SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
