import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../pipeline/errors';
import {
  readPlanConfig,
  readResyncConfig,
  readSummarizeConfig,
  readUpdaterConfig,
  readWatchdogConfig,
  readWorkerConfig,
} from '../../../pipeline/lambda/config';

const workerEnv = {
  DDB2OS_TABLE_NAME: 'orders',
  DDB2OS_INDEX_NAME: 'orders',
  DDB2OS_OPENSEARCH_ENDPOINT: 'https://search-x.eu-west-1.es.amazonaws.com',
  DDB2OS_PROGRESS_TABLE: 'progress',
  DDB2OS_SEGMENT_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q',
  DDB2OS_DEAD_LETTER_BUCKET: 'bucket',
};

describe('worker configuration', () => {
  it('reads the environment once, with defaults', () => {
    expect(readWorkerConfig({ ...workerEnv, DDB2OS_BULK_MAX_BYTES: '1048576' })).toMatchObject({
      table: 'orders',
      bulkMaxBytes: 1_048_576,
      timeReserveMs: 120_000,
    });
  });

  it.each(Object.keys(workerEnv))('names %s when it is missing', (name) => {
    const env: Record<string, string | undefined> = { ...workerEnv, [name]: '  ' };
    expect(() => readWorkerConfig(env)).toThrow(`environment variable ${name} is not set`);
  });

  it('names a variable that is not a positive integer or a known signing', () => {
    expect(() => readWorkerConfig({ ...workerEnv, DDB2OS_TIME_RESERVE_MS: '2 minutes' })).toThrow(
      'environment variable DDB2OS_TIME_RESERVE_MS must be a positive integer, not "2 minutes"',
    );
    expect(() => readWorkerConfig({ ...workerEnv, DDB2OS_OPENSEARCH_SIGNING: 'sigv4' })).toThrow(
      'environment variable DDB2OS_OPENSEARCH_SIGNING must be es, aoss or none, not "sigv4"',
    );
  });

  it('asks the plan and summarize Lambdas only for what they use', () => {
    const sink = {
      DDB2OS_INDEX_NAME: 'orders',
      DDB2OS_OPENSEARCH_ENDPOINT: 'http://127.0.0.1:9200',
    };
    expect(readPlanConfig({ ...sink, DDB2OS_PLAN_BUCKET: 'b' })).toMatchObject({ planBucket: 'b' });
    expect(() => readPlanConfig(sink)).toThrow('environment variable DDB2OS_PLAN_BUCKET is not set');
    expect(readSummarizeConfig({ ...sink, DDB2OS_PROGRESS_TABLE: 'p' })).toMatchObject({
      progressTable: 'p',
    });
  });
});

describe('updater configuration', () => {
  const complete = {
    DDB2OS_TABLE_NAME: 'orders',
    DDB2OS_INDEX_NAME: 'orders',
    DDB2OS_OPENSEARCH_ENDPOINT: 'https://search-x.eu-west-1.es.amazonaws.com',
    DDB2OS_DEAD_LETTER_BUCKET: 'bucket',
  };

  it('reads the variables once into settings', () => {
    expect(
      readUpdaterConfig({ ...complete, DDB2OS_OPENSEARCH_SIGNING: 'es', DDB2OS_BULK_MAX_DOCS: '500' }),
    ).toEqual({
      table: 'orders',
      index: 'orders',
      endpoint: 'https://search-x.eu-west-1.es.amazonaws.com',
      signing: 'es',
      mapping: undefined,
      progressTable: undefined,
      deadLetterBucket: 'bucket',
      dynamodbEndpoint: undefined,
      bulkMaxBytes: undefined,
      bulkMaxDocs: 500,
    });
  });

  it('reads the progress table, where the resync state is, when it is set', () => {
    expect(readUpdaterConfig({ ...complete, DDB2OS_PROGRESS_TABLE: 'progress' }).progressTable).toBe(
      'progress',
    );
  });

  it('names the missing or invalid variable', () => {
    const { DDB2OS_DEAD_LETTER_BUCKET: _, ...withoutBucket } = complete;
    expect(() => readUpdaterConfig(withoutBucket)).toThrow(
      new ConfigurationError('environment variable DDB2OS_DEAD_LETTER_BUCKET is not set'),
    );
    expect(() => readUpdaterConfig({ ...complete, DDB2OS_OPENSEARCH_SIGNING: 'sigv4' })).toThrow(
      'environment variable DDB2OS_OPENSEARCH_SIGNING must be es, aoss or none, not "sigv4"',
    );
    expect(() => readUpdaterConfig({ ...complete, DDB2OS_BULK_MAX_BYTES: '-1' })).toThrow(
      'environment variable DDB2OS_BULK_MAX_BYTES must be a positive integer, not "-1"',
    );
  });
});

describe('resync configuration', () => {
  const complete = {
    DDB2OS_TABLE_NAME: 'orders',
    DDB2OS_INDEX_NAME: 'orders',
    DDB2OS_OPENSEARCH_ENDPOINT: 'https://search-x.eu-west-1.es.amazonaws.com',
    DDB2OS_PROGRESS_TABLE: 'progress',
  };

  it('reads the table, the domain, the mapping and the progress table', () => {
    expect(readResyncConfig({ ...complete, DDB2OS_MAPPING: '{"routes":[]}' })).toEqual({
      table: 'orders',
      index: 'orders',
      endpoint: 'https://search-x.eu-west-1.es.amazonaws.com',
      mapping: '{"routes":[]}',
      progressTable: 'progress',
      dynamodbEndpoint: undefined,
    });
  });

  it.each(Object.keys(complete))('names %s when it is missing', (name) => {
    expect(() => readResyncConfig({ ...complete, [name]: '' })).toThrow(
      `environment variable ${name} is not set`,
    );
  });
});

describe('watchdog and deploy guard configuration', () => {
  it('reads the table, the progress table and the mapping, and names the one missing', () => {
    const complete = {
      DDB2OS_TABLE_NAME: 'orders',
      DDB2OS_PROGRESS_TABLE: 'progress',
      DDB2OS_UPDATER_MAPPING_UUID: 'uuid-1',
    };
    expect(readWatchdogConfig(complete)).toEqual({
      table: 'orders',
      progressTable: 'progress',
      mappingUuid: 'uuid-1',
      dynamodbEndpoint: undefined,
    });
    const { DDB2OS_UPDATER_MAPPING_UUID: _, ...withoutMapping } = complete;
    expect(() => readWatchdogConfig(withoutMapping)).toThrow(
      new ConfigurationError('environment variable DDB2OS_UPDATER_MAPPING_UUID is not set'),
    );
  });
});
