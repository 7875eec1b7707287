/**
 * The real local engines: DynamoDB Local and OpenSearch, fetched with Maven,
 * started on free loopback ports and stopped cleanly (./fetch,
 * ./process-group, one file per engine). Tests, the CLI and the benchmarks
 * all start them here. `DYNAMODB_ENDPOINT` and `OPENSEARCH_URL` replace the
 * started engines with existing ones.
 */
import { existingDynamoDb, startDynamoDbLocal } from './dynamodb-local';
import type { Engine, EngineOptions } from './engine';
import { fetchEngines } from './fetch';
import { existingOpenSearch, startOpenSearch } from './opensearch';

export interface Engines {
  dynamodb: Engine;
  opensearch: Engine;
  /** One line a person can read: which engines, which versions, where. */
  describe(): string;
  stop(): Promise<void>;
}

/**
 * Starts whatever the environment does not already provide: DynamoDB Local
 * unless DYNAMODB_ENDPOINT is set, OpenSearch unless OPENSEARCH_URL is set.
 * The two start side by side.
 */
export async function startEngines(options: EngineOptions = {}): Promise<Engines> {
  const dynamoEnv = options.ignoreEnvironment ? undefined : process.env.DYNAMODB_ENDPOINT;
  const openSearchEnv = options.ignoreEnvironment ? undefined : process.env.OPENSEARCH_URL;
  if (!dynamoEnv || !openSearchEnv) fetchEngines(options.log);
  const results = await Promise.allSettled([
    dynamoEnv ? Promise.resolve(existingDynamoDb(dynamoEnv)) : startDynamoDbLocal(options),
    openSearchEnv ? existingOpenSearch(openSearchEnv) : startOpenSearch(options),
  ]);
  const [dynamoResult, openSearchResult] = results as [
    PromiseSettledResult<Engine>,
    PromiseSettledResult<Engine>,
  ];
  if (dynamoResult.status === 'rejected' || openSearchResult.status === 'rejected') {
    for (const result of results) if (result.status === 'fulfilled') await result.value.stop();
    const failure = (
      dynamoResult.status === 'rejected' ? dynamoResult : openSearchResult
    ) as PromiseRejectedResult;
    throw failure.reason;
  }
  const dynamodb = dynamoResult.value;
  const opensearch = openSearchResult.value;
  return {
    dynamodb,
    opensearch,
    describe: () =>
      `${dynamodb.name} ${dynamodb.version} at ${dynamodb.url}; ${opensearch.name} ${opensearch.version} at ${opensearch.url}`,
    stop: async () => {
      await Promise.all([dynamodb.stop(), opensearch.stop()]);
    },
  };
}
