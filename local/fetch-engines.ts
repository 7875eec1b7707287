/** `npm run engines:fetch`: fetch and unpack both engines once (CI runs it before the tests). */
import { cacheDir, fetchEngines } from './engines/fetch';

const artifacts = fetchEngines((line) => console.log(line));
console.log(
  `engines ready in ${cacheDir()}: DynamoDB Local ${artifacts.dynamoDbLocalVersion}, OpenSearch ${artifacts.openSearchVersion}`,
);
