/**
 * vitest global setup: starts the real engines once per run (or uses
 * DYNAMODB_ENDPOINT / OPENSEARCH_URL), prints which versions the tests talk
 * to, and stops them at the end.
 */
import type { TestProject } from 'vitest/node';
import { startEngines } from '../local/engines';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
    opensearchUrl: string;
    engines: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The AWS SDK wants a region and credentials even for local engines.
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const started = Date.now();
  const engines = await startEngines({ log: (line) => console.log(`[engines] ${line}`) });
  console.log(
    `[engines] tests talk to ${engines.describe()} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  project.provide('dynamodbEndpoint', engines.dynamodb.url);
  project.provide('opensearchUrl', engines.opensearch.url);
  project.provide('engines', engines.describe());
  return async () => {
    await engines.stop();
  };
}
