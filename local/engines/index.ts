/**
 * The real local engines: DynamoDB Local and OpenSearch, fetched with Maven,
 * and on request the engines of the other change sources, ElasticMQ (SQS,
 * from Maven) and kinesalite (Kinesis, from npm), each started on a free
 * loopback port and stopped cleanly (./fetch, ./process-group, one file per
 * engine). Tests, the CLI and the benchmarks all start them here.
 * `DYNAMODB_ENDPOINT`, `OPENSEARCH_URL`, `SQS_ENDPOINT` and
 * `KINESIS_ENDPOINT` replace the started engines with existing ones.
 */
import { existingDynamoDb, startDynamoDbLocal } from './dynamodb-local';
import { existingSqs, startElasticMq } from './elasticmq';
import type { Engine, EngineOptions } from './engine';
import { fetchEngines } from './fetch';
import { existingKinesis, startKinesalite } from './kinesalite';
import { existingOpenSearch, startOpenSearch } from './opensearch';

export interface Engines {
  dynamodb: Engine;
  opensearch: Engine;
  /** Only when asked for (`sqs: true`). */
  sqs?: Engine;
  /** Only when asked for (`kinesis: true`). */
  kinesis?: Engine;
  /** One line a person can read: which engines, which versions, where. */
  describe(): string;
  stop(): Promise<void>;
}

function fromEnvironment(options: EngineOptions, variable: string): string | undefined {
  return options.ignoreEnvironment ? undefined : process.env[variable] || undefined;
}

/** ElasticMQ on loopback, or the SQS endpoint SQS_ENDPOINT names. */
export async function startSqsEngine(options: EngineOptions = {}): Promise<Engine> {
  const url = fromEnvironment(options, 'SQS_ENDPOINT');
  return url ? existingSqs(url) : startElasticMq(options);
}

/** kinesalite on loopback, or the Kinesis endpoint KINESIS_ENDPOINT names. */
export async function startKinesisEngine(options: EngineOptions = {}): Promise<Engine> {
  const url = fromEnvironment(options, 'KINESIS_ENDPOINT');
  return url ? existingKinesis(url) : startKinesalite(options);
}

/**
 * Starts whatever the environment does not already provide: DynamoDB Local
 * unless DYNAMODB_ENDPOINT is set, OpenSearch unless OPENSEARCH_URL is set,
 * and, when asked for, ElasticMQ unless SQS_ENDPOINT is set and kinesalite
 * unless KINESIS_ENDPOINT is set. They start side by side; if one fails, the
 * others are stopped.
 */
export async function startEngines(options: EngineOptions = {}): Promise<Engines> {
  const dynamoEnv = fromEnvironment(options, 'DYNAMODB_ENDPOINT');
  const openSearchEnv = fromEnvironment(options, 'OPENSEARCH_URL');
  if (!dynamoEnv || !openSearchEnv) fetchEngines(options.log);
  const starts: Promise<Engine | undefined>[] = [
    dynamoEnv ? Promise.resolve(existingDynamoDb(dynamoEnv)) : startDynamoDbLocal(options),
    openSearchEnv ? existingOpenSearch(openSearchEnv) : startOpenSearch(options),
    options.sqs ? startSqsEngine(options) : Promise.resolve(undefined),
    options.kinesis ? startKinesisEngine(options) : Promise.resolve(undefined),
  ];
  const results = await Promise.allSettled(starts);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) {
    for (const result of results) if (result.status === 'fulfilled') await result.value?.stop();
    throw failure.reason;
  }
  const [dynamodb, opensearch, sqs, kinesis] = results.map(
    (result) => (result as PromiseFulfilledResult<Engine | undefined>).value,
  ) as [Engine, Engine, Engine | undefined, Engine | undefined];
  const all = [dynamodb, opensearch, sqs, kinesis].filter((engine): engine is Engine => engine !== undefined);
  return {
    dynamodb,
    opensearch,
    sqs,
    kinesis,
    describe: () => all.map((engine) => `${engine.name} ${engine.version} at ${engine.url}`).join('; '),
    stop: async () => {
      await Promise.all(all.map((engine) => engine.stop()));
    },
  };
}
