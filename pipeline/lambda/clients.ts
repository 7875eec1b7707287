/**
 * What the Lambda handlers build at cold start, written once: AWS clients
 * traced by Powertools (DynamoDB pointed at an endpoint when one is
 * configured), and the mapping of a function that maps items, whose
 * transform hook was bundled into it at synth (it cannot import a path).
 */
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { loadMappingConfig, type MappingConfig } from '../mapping/mapping';
import type { UpdaterStateDeps } from '../watchdog/updater-state';
import type { WatchdogConfig } from './config';

/** A traced DynamoDB client; `endpoint` only when the configuration names one. */
export function tracedDynamoDb(tracer: Tracer, endpoint: string | undefined): DynamoDBClient {
  return tracer.captureAWSv3Client(new DynamoDBClient(endpoint ? { endpoint } : {}));
}

/** A traced S3 client. */
export function tracedS3(tracer: Tracer): S3Client {
  return tracer.captureAWSv3Client(new S3Client({}));
}

/** The mapping of the worker or the updater: its transform hook is the module bundled at synth. */
export function bundledMapping(config: { mapping?: unknown; index: string }): Promise<MappingConfig> {
  return loadMappingConfig(config.mapping, { index: config.index }, { transformSource: 'bundle' });
}

/** The watchdog's and the deploy guard's clients (traced) and names: the mapping, the run lock, the holder's execution. */
export function updaterStateDeps(tracer: Tracer, config: WatchdogConfig): UpdaterStateDeps {
  return {
    lambda: tracer.captureAWSv3Client(new LambdaClient({})),
    sfn: tracer.captureAWSv3Client(new SFNClient({})),
    dynamodb: tracedDynamoDb(tracer, config.dynamodbEndpoint),
    progressTable: config.progressTable,
    table: config.table,
    mappingUuid: config.mappingUuid,
  };
}
