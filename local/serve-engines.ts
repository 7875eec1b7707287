/**
 * `npm run engines:serve [-- --sqs] [-- --kinesis] [ENV_FILE]`: start the
 * engines and keep them running until Ctrl-C, printing the environment lines
 * that point tests and the CLI at them (`DYNAMODB_ENDPOINT`, `OPENSEARCH_URL`,
 * and with `--sqs` / `--kinesis` also `SQS_ENDPOINT` / `KINESIS_ENDPOINT`),
 * and writing them to ENV_FILE when given. Handy while developing: one set of
 * engines for many test runs.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEngines } from './engines';

const { values, positionals } = parseArgs({
  options: { sqs: { type: 'boolean' }, kinesis: { type: 'boolean' } },
  allowPositionals: true,
});
const envFile = positionals[0];
const engines = await startEngines({
  log: (line) => console.error(line),
  ignoreEnvironment: true,
  sqs: values.sqs,
  kinesis: values.kinesis,
});
const variables: [string, string | undefined][] = [
  ['DYNAMODB_ENDPOINT', engines.dynamodb.url],
  ['OPENSEARCH_URL', engines.opensearch.url],
  ['SQS_ENDPOINT', engines.sqs?.url],
  ['KINESIS_ENDPOINT', engines.kinesis?.url],
];
const lines = variables
  .filter(([, url]) => url !== undefined)
  .map(([name, url]) => `${name}=${url}\n`)
  .join('');
process.stdout.write(lines);
if (envFile) writeFileSync(envFile, lines);
console.error(`${engines.describe()}; Ctrl-C stops them`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void engines.stop().then(() => process.exit(0));
  });
}
setInterval(() => {}, 1 << 30);
