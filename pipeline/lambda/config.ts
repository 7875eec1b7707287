/**
 * The Lambdas' settings, read once per execution environment from the
 * variables named in pipeline/contract/env.ts (the stack sets them). One
 * reader for all: a missing or malformed variable fails fast with a
 * ConfigurationError that names it.
 */
import { ENV } from '../contract/env';
import { ConfigurationError } from '../errors';
import type { OpenSearchSigning } from '../index/opensearch';

type Env = Record<string, string | undefined>;

/** Where OpenSearch is and how the mapping reads; every Lambda talks to the index. */
export interface SinkConfig {
  /** Default index (DDB2OS_INDEX_NAME); the workflow input may name another. */
  index: string;
  endpoint: string;
  signing?: OpenSearchSigning;
  /** DDB2OS_MAPPING as given (JSON), if set. */
  mapping?: string;
}

export interface WorkerConfig extends SinkConfig {
  /** The table this deployment backfills; a message naming another is refused. */
  table: string;
  progressTable: string;
  segmentQueueUrl: string;
  deadLetterBucket: string;
  dynamodbEndpoint?: string;
  bulkMaxBytes?: number;
  bulkMaxDocs?: number;
  /** Below this much remaining Lambda time the worker hands the segment on. @default 120000 */
  timeReserveMs: number;
}

export interface PlanConfig extends SinkConfig {
  table?: string;
  planBucket: string;
  targetSegmentBytes?: number;
}

export interface SummarizeConfig extends SinkConfig {
  progressTable: string;
  dynamodbEndpoint?: string;
}

/** The run-lock function's settings ("Validate and lock", "Release lock"). */
export interface RunLockConfig {
  table: string;
  /** The updater's default index (routes come from the mapping). */
  index: string;
  progressTable: string;
  updaterMappingUuid: string;
  updaterFunctionName: string;
  /** DDB2OS_MAPPING as given (JSON), if set: its routes explain a refused index. */
  mapping?: string;
  dynamodbEndpoint?: string;
}

/** The resync function's settings ("Start resync", "Drain resync", "Remove tombstones", "Swap aliases", "Abort resync"). */
export interface ResyncConfig extends SinkConfig {
  table: string;
  /** Where the table's resync state is. */
  progressTable: string;
  dynamodbEndpoint?: string;
}

/** The updater's settings. */
export interface UpdaterConfig extends SinkConfig {
  table: string;
  /** Where the table's resync state is, read before each batch; absent: the updater never looks for one. */
  progressTable?: string;
  deadLetterBucket: string;
  dynamodbEndpoint?: string;
  bulkMaxBytes?: number;
  bulkMaxDocs?: number;
}

/** The watchdog's and the deploy guard's settings: which mapping, and where the run lock is. */
export interface WatchdogConfig {
  table: string;
  progressTable: string;
  mappingUuid: string;
  dynamodbEndpoint?: string;
}

export const DEFAULT_TIME_RESERVE_MS = 120_000;

/** The worker's settings; throws ConfigurationError naming the first missing or malformed variable. */
export function readWorkerConfig(env: Env = process.env): WorkerConfig {
  const read = reader(env);
  return {
    ...readSink(env),
    table: read.required(ENV.TABLE_NAME),
    progressTable: read.required(ENV.PROGRESS_TABLE),
    segmentQueueUrl: read.required(ENV.SEGMENT_QUEUE_URL),
    deadLetterBucket: read.required(ENV.DEAD_LETTER_BUCKET),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
    bulkMaxBytes: read.positive(ENV.BULK_MAX_BYTES),
    bulkMaxDocs: read.positive(ENV.BULK_MAX_DOCS),
    timeReserveMs: read.positive(ENV.TIME_RESERVE_MS) ?? DEFAULT_TIME_RESERVE_MS,
  };
}

/** The plan function's settings; throws ConfigurationError naming the first missing or malformed variable. */
export function readPlanConfig(env: Env = process.env): PlanConfig {
  const read = reader(env);
  return {
    ...readSink(env),
    table: read.optional(ENV.TABLE_NAME),
    planBucket: read.required(ENV.PLAN_BUCKET),
    targetSegmentBytes: read.positive(ENV.TARGET_SEGMENT_BYTES),
  };
}

/** The summarize function's settings; throws ConfigurationError naming the first missing or malformed variable. */
export function readSummarizeConfig(env: Env = process.env): SummarizeConfig {
  const read = reader(env);
  return {
    ...readSink(env),
    progressTable: read.required(ENV.PROGRESS_TABLE),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
  };
}

/** The updater's settings; throws ConfigurationError naming the first missing or malformed variable. */
export function readUpdaterConfig(env: Env = process.env): UpdaterConfig {
  const read = reader(env);
  // The table first, so an updater with no settings at all names its table, as it always has.
  const table = read.required(ENV.TABLE_NAME);
  return {
    table,
    ...readSink(env),
    progressTable: read.optional(ENV.PROGRESS_TABLE),
    deadLetterBucket: read.required(ENV.DEAD_LETTER_BUCKET),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
    bulkMaxBytes: read.positive(ENV.BULK_MAX_BYTES),
    bulkMaxDocs: read.positive(ENV.BULK_MAX_DOCS),
  };
}

/** The resync function's settings; throws ConfigurationError naming the first missing or malformed variable. */
export function readResyncConfig(env: Env = process.env): ResyncConfig {
  const read = reader(env);
  return {
    table: read.required(ENV.TABLE_NAME),
    ...readSink(env),
    progressTable: read.required(ENV.PROGRESS_TABLE),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
  };
}

/** The run-lock function's settings; throws ConfigurationError naming the first missing variable. */
export function readRunLockConfig(env: Env = process.env): RunLockConfig {
  const read = reader(env);
  return {
    table: read.required(ENV.TABLE_NAME),
    index: read.required(ENV.INDEX_NAME),
    progressTable: read.required(ENV.PROGRESS_TABLE),
    updaterMappingUuid: read.required(ENV.UPDATER_MAPPING_UUID),
    updaterFunctionName: read.required(ENV.UPDATER_FUNCTION_NAME),
    mapping: read.optional(ENV.MAPPING),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
  };
}

/** The watchdog's (and the deploy guard's) settings; throws ConfigurationError naming the first missing variable. */
export function readWatchdogConfig(env: Env = process.env): WatchdogConfig {
  const read = reader(env);
  return {
    table: read.required(ENV.TABLE_NAME),
    progressTable: read.required(ENV.PROGRESS_TABLE),
    mappingUuid: read.required(ENV.UPDATER_MAPPING_UUID),
    dynamodbEndpoint: read.optional(ENV.DYNAMODB_ENDPOINT),
  };
}

function readSink(env: Env): SinkConfig {
  const read = reader(env);
  const signing = read.optional(ENV.OPENSEARCH_SIGNING);
  if (signing !== undefined && signing !== 'es' && signing !== 'aoss' && signing !== 'none') {
    throw new ConfigurationError(
      `environment variable ${ENV.OPENSEARCH_SIGNING} must be es, aoss or none, not "${signing}"`,
    );
  }
  return {
    index: read.required(ENV.INDEX_NAME),
    endpoint: read.required(ENV.OPENSEARCH_ENDPOINT),
    ...(signing ? { signing } : {}),
    mapping: read.optional(ENV.MAPPING),
  };
}

function reader(env: Env) {
  const optional = (name: string): string | undefined => env[name]?.trim() || undefined;
  return {
    optional,
    required(name: string): string {
      const value = optional(name);
      if (value === undefined) throw new ConfigurationError(`environment variable ${name} is not set`);
      return value;
    },
    positive(name: string): number | undefined {
      const text = optional(name);
      if (text === undefined) return undefined;
      const value = Number(text);
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConfigurationError(
          `environment variable ${name} must be a positive integer, not "${text}"`,
        );
      }
      return value;
    },
  };
}
