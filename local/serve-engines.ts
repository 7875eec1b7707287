/**
 * `npm run engines:serve`: start both engines and keep them running until
 * Ctrl-C, printing the environment lines that point tests and the CLI at them
 * (`DYNAMODB_ENDPOINT`, `OPENSEARCH_URL`). Handy while developing: one pair of
 * engines for many test runs.
 */
import { writeFileSync } from 'node:fs';
import { startEngines } from './engines';

const envFile = process.argv[2];
const engines = await startEngines({ log: (line) => console.error(line), ignoreEnvironment: true });
const lines = `DYNAMODB_ENDPOINT=${engines.dynamodb.url}\nOPENSEARCH_URL=${engines.opensearch.url}\n`;
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
