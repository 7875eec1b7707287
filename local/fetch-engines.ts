/**
 * `npm run engines:fetch`: fetch and unpack the Java engines once (CI runs it
 * before the tests): DynamoDB Local, OpenSearch and ElasticMQ. kinesalite is
 * an npm devDependency: `npm install` brings it.
 */
import { cacheDir, fetchElasticMq, fetchEngines } from './engines/fetch';

const log = (line: string) => console.log(line);
const artifacts = fetchEngines(log);
const elasticMq = fetchElasticMq(log);
console.log(
  `engines ready in ${cacheDir()}: DynamoDB Local ${artifacts.dynamoDbLocalVersion}, OpenSearch ${artifacts.openSearchVersion}, ElasticMQ ${elasticMq.elasticMqVersion}`,
);
