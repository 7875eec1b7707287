/**
 * The transform hook in the cloud: BackfillWorkflow's transformModule (and
 * the stack's `-c transformModule=PATH`) bundles the user's module into the
 * worker and the updater. Synth-time rejections; the synthesized bundles; and
 * the bundled handlers' code, loaded from the cloud assembly and invoked in
 * this process against DynamoDB Local and the real OpenSearch.
 */

import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Context, DynamoDBStreamEvent, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureProgressTable } from '../../pipeline/progress/checkpoint';
import { BackfillStack } from '../../stacks/backfill-stack';
import { BackfillWorkflow } from '../../stacks/backfill-workflow';
import { PROJECT_ROOT } from '../../stacks/handler-function';
import { readStream, toLambdaRecord } from '../pipeline/apply/apply-stream-fixtures';
import {
  createTable,
  deleteIndex,
  deleteTable,
  dynamoClient,
  dynamodbEndpoint,
  openSearchClient,
  opensearchUrl,
  streamsClient,
  uniqueName,
} from '../support/engines';
import {
  DOMAIN_ARN,
  DOMAIN_ENDPOINT,
  EXISTING_CONTEXT,
  stackWithStreamTable,
  synthInChildProcess,
  testApp,
  unacknowledgedNagFindings,
} from './fixtures';

/** The module as a user names it: relative to the working directory, where `cdk synth` runs. */
const TRANSFORM = relative(
  process.cwd(),
  join(PROJECT_ROOT, 'test/stacks/user-transform/order-transform.ts'),
);

function workflowWith(props: { transformModule?: string; mapping?: Record<string, unknown> }) {
  const { stack, table } = stackWithStreamTable();
  return new BackfillWorkflow(stack, 'Workflow', {
    table,
    index: 'orders',
    domainEndpoint: DOMAIN_ENDPOINT,
    domainArn: DOMAIN_ARN,
    ...props,
  });
}

describe('BackfillWorkflow transformModule: synth-time checks', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ddb2os-transform-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects a path that is not a file, naming the prop and where it resolved', () => {
    const missing = join(dir, 'nowhere.ts');
    expect(() => workflowWith({ transformModule: missing })).toThrow(
      `BackfillWorkflow: transformModule ${missing} is not a file (resolved to ${missing}).`,
    );
  });

  it('rejects a module that esbuild cannot bundle, naming the prop, the file and the unresolved import', () => {
    const broken = join(dir, 'broken.ts');
    writeFileSync(broken, "import { lookup } from './lookup-table';\nexport default lookup;\n");
    expect(() => workflowWith({ transformModule: broken })).toThrow(
      `BackfillWorkflow: transformModule ${broken} cannot be bundled: ${broken}:1:23: Could not resolve "./lookup-table".`,
    );
  });

  it('rejects a module that exports neither default nor transform, listing what it exports', () => {
    const wrong = join(dir, 'wrong.mjs');
    writeFileSync(wrong, 'export const mapOrder = (item) => null;\nexport const version = 2;\n');
    expect(() => workflowWith({ transformModule: wrong })).toThrow(
      `BackfillWorkflow: transformModule ${wrong} exports neither a default function nor a function named transform (its exports: mapOrder, version).`,
    );
  });

  it.each([
    ['transformModule', TRANSFORM],
    ['transform', () => null],
  ])(
    'rejects mapping.%s, which cannot reach the deployed functions, and points at the transformModule prop',
    (field, value) => {
      expect(() => workflowWith({ mapping: { [field]: value } })).toThrow(
        `BackfillWorkflow: mapping.${field} cannot reach the deployed functions; give the module's path as the ` +
          'transformModule prop (-c transformModule=PATH), which bundles it into them.',
      );
    },
  );

  it('names the module in DDB2OS_MAPPING of every function that talks to OpenSearch, next to the rest of the mapping', () => {
    const workflow = workflowWith({ transformModule: TRANSFORM, mapping: { index: 'orders' } });
    const template = Template.fromStack(workflow.node.scope as Stack);
    // The watchdog and the deploy guard read the mapping's state, not items: they have no index. The
    // run-lock function has one: it checks the input's index against the mapping's indices; the resync
    // function makes a new index for each index the mapping writes.
    const mappings = Object.values(template.findResources('AWS::Lambda::Function'))
      .filter((fn) => fn.Properties.Environment?.Variables?.DDB2OS_INDEX_NAME !== undefined)
      .map((fn) => fn.Properties.Environment.Variables.DDB2OS_MAPPING);
    expect(mappings).toEqual(Array(6).fill(JSON.stringify({ index: 'orders', transformModule: TRANSFORM })));
  });
});

/** The parts of an AWS::Lambda::Function's properties that the tests read. */
interface FunctionProperties {
  Description: string;
  Code: { S3Key: string };
  Environment: { Variables: Record<string, unknown> };
}

const FUNCTION_DESCRIPTIONS = {
  plan: 'ddb2os: plans the backfill segments of a table',
  worker: 'ddb2os: scans one table segment into OpenSearch',
  updater: 'ddb2os: applies DynamoDB stream changes to OpenSearch',
  summarize: 'ddb2os: adds up the segment counts of a backfill run',
};

/** The CDK app synthesized with `-c` context, bundling on (synthInChildProcess); each function's code asset and environment. */
async function synthApp(context: Record<string, string>) {
  const directory = await synthInChildProcess(context);
  const template = JSON.parse(readFileSync(join(directory, 'Ddb2osBackfill.template.json'), 'utf8'));
  const functions = Object.values(
    template.Resources as Record<string, { Type: string; Properties: FunctionProperties }>,
  )
    .filter((resource) => resource.Type === 'AWS::Lambda::Function')
    .map((resource) => resource.Properties);
  const fn = (description: string) => {
    const properties = functions.find((candidate) => candidate.Description === description)!;
    const s3Key = properties.Code.S3Key;
    const indexFile = join(directory, `asset.${s3Key.replace(/\.zip$/, '')}`, 'index.mjs');
    return {
      s3Key,
      code: readFileSync(indexFile, 'utf8'),
      indexFile,
      environment: properties.Environment.Variables,
    };
  };
  return {
    directory,
    plan: fn(FUNCTION_DESCRIPTIONS.plan),
    worker: fn(FUNCTION_DESCRIPTIONS.worker),
    updater: fn(FUNCTION_DESCRIPTIONS.updater),
    summarize: fn(FUNCTION_DESCRIPTIONS.summarize),
  };
}

describe('BackfillStack with -c transformModule=PATH, built in process as stacks/app.ts builds it', () => {
  const stack = new BackfillStack(
    testApp({ ...EXISTING_CONTEXT, transformModule: TRANSFORM }),
    'Ddb2osBackfill',
  );

  it('leaves no cdk-nag finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack -c transformModule=PATH', () => {
  let plain: Awaited<ReturnType<typeof synthApp>>;
  let bundled: Awaited<ReturnType<typeof synthApp>>;

  beforeAll(async () => {
    plain = await synthApp({});
    bundled = await synthApp({ transformModule: TRANSFORM });
  });
  afterAll(() => {
    rmSync(plain.directory, { recursive: true, force: true });
    rmSync(bundled.directory, { recursive: true, force: true });
  });

  it('gives the worker and the updater new code that holds the module and its import; plan and summarize keep theirs', () => {
    expect(bundled.worker.s3Key).not.toBe(plain.worker.s3Key);
    expect(bundled.updater.s3Key).not.toBe(plain.updater.s3Key);
    expect(bundled.plan.s3Key).toBe(plain.plan.s3Key);
    expect(bundled.summarize.s3Key).toBe(plain.summarize.s3Key);
    for (const code of [bundled.worker.code, bundled.updater.code]) {
      expect(code).toContain('order-transform fixture');
      expect(code).toContain('order-line:');
    }
    for (const code of [plain.worker.code, plain.updater.code, bundled.plan.code]) {
      expect(code).not.toContain('order-transform fixture');
    }
  });

  it('names the module from context in DDB2OS_MAPPING of every function', () => {
    for (const fn of [bundled.plan, bundled.worker, bundled.updater, bundled.summarize]) {
      expect(fn.environment.DDB2OS_MAPPING).toBe(JSON.stringify({ transformModule: TRANSFORM }));
    }
    expect(plain.worker.environment.DDB2OS_MAPPING).toBeUndefined();
  });

  describe('the bundled handlers, invoked in process against the real engines', () => {
    let dynamodb: DynamoDBClient;
    let streams: DynamoDBStreamsClient;
    let search: Client;
    const table = uniqueName('transform-bundle');
    const progressTable = uniqueName('transform-progress');
    const indices: string[] = [];
    const savedEnv = { ...process.env };
    let imports = 0;

    /** The function's variables from the template, with what only a deployment resolves pointed at the engines. */
    function useEnvironment(environment: Record<string, unknown>, local: Record<string, string>): void {
      for (const [name, value] of Object.entries({ ...environment, ...local })) {
        if (typeof value !== 'string') throw new Error(`the test gives no local value for ${name}`);
        process.env[name] = value;
      }
    }

    /** A fresh instance of a bundle (its own cold start), as a new execution environment would load it. */
    async function loadBundle<T>(indexFile: string): Promise<T> {
      imports += 1;
      return (await import(`${pathToFileURL(indexFile).href}?environment=${imports}`)) as T;
    }

    function newIndex(): string {
      const index = uniqueName('transform-bundle');
      indices.push(index, `${index}-orders`);
      return index;
    }

    beforeAll(async () => {
      // The bundles leave the AWS SDK to the Lambda runtime; here it comes from the project.
      symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(bundled.directory, 'node_modules'));
      dynamodb = dynamoClient();
      streams = streamsClient();
      search = openSearchClient();
      await createTable(dynamodb, table, {
        keySchema: { partitionKey: 'pk', sortKey: 'sk' },
        stream: 'NEW_AND_OLD_IMAGES',
      });
      await ensureProgressTable(dynamodb, progressTable);
      const lines = [
        { pk: 'o-1', sk: 'line-1', quantity: '3', price: '2.5' },
        { pk: 'o-1', sk: 'line-2', quantity: '1', price: '10' },
        { pk: 'o-2', sk: 'line-1', quantity: '4', price: '0.25' },
      ];
      for (const line of lines) {
        await dynamodb.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: line.pk },
              sk: { S: line.sk },
              quantity: { N: line.quantity },
              price: { N: line.price },
            },
          }),
        );
      }
    });

    afterAll(async () => {
      process.env = savedEnv;
      unlinkSync(join(bundled.directory, 'node_modules'));
      await deleteTable(dynamodb, table);
      await deleteTable(dynamodb, progressTable);
      for (const index of indices) await deleteIndex(search, index);
      dynamodb.destroy();
      streams.destroy();
      await search.close();
    });

    /** What the fixture's transform makes of the three order lines: index, id and body. */
    async function expectTransformedDocuments(index: string): Promise<void> {
      await search.indices.refresh({ index: `${index}-orders` });
      const { body } = await search.search({ index: `${index}-orders`, body: { size: 100 } });
      const hits = body.hits.hits.map((hit) => ({ index: hit._index, id: hit._id, document: hit._source }));
      expect(hits.sort((a, b) => String(a.id).localeCompare(String(b.id)))).toEqual([
        {
          index: `${index}-orders`,
          id: 'order-line:o-1/line-1',
          document: { order: 'o-1', total: 7.5, mappedBy: 'order-transform fixture' },
        },
        {
          index: `${index}-orders`,
          id: 'order-line:o-1/line-2',
          document: { order: 'o-1', total: 10, mappedBy: 'order-transform fixture' },
        },
        {
          index: `${index}-orders`,
          id: 'order-line:o-2/line-1',
          document: { order: 'o-2', total: 1, mappedBy: 'order-transform fixture' },
        },
      ]);
      expect((await search.indices.exists({ index })).body).toBe(false);
    }

    function updaterEnvironment(index: string): Record<string, string> {
      return {
        DDB2OS_TABLE_NAME: table,
        DDB2OS_INDEX_NAME: index,
        DDB2OS_OPENSEARCH_ENDPOINT: opensearchUrl(),
        DDB2OS_OPENSEARCH_SIGNING: 'none',
        DDB2OS_DEAD_LETTER_BUCKET: 'not-used-when-every-record-maps',
        // Where the updater reads the resync state (none here) before each batch.
        DDB2OS_PROGRESS_TABLE: progressTable,
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        POWERTOOLS_TRACE_ENABLED: 'false',
      };
    }

    const lambdaContext = {
      functionName: 'ddb2os-test',
      awsRequestId: 'request-1',
      getRemainingTimeInMillis: () => 900_000,
    } as unknown as Context;

    it("the updater's bundle applies a stream event through the bundled transform: the documents are the transform's (index, id, body)", async () => {
      // Prepare
      const index = newIndex();
      useEnvironment(bundled.updater.environment, updaterEnvironment(index));
      const event: DynamoDBStreamEvent = {
        Records: (await readStream(streams, dynamodb, table)).map(toLambdaRecord),
      };
      expect(event.Records).toHaveLength(3);
      const { handler } = await loadBundle<{
        handler: (event: DynamoDBStreamEvent, context: Context) => Promise<unknown>;
      }>(bundled.updater.indexFile);

      // Act
      const response = await handler(event, lambdaContext);

      // Assess
      expect(response).toEqual({ batchItemFailures: [] });
      await expectTransformedDocuments(index);
    });

    it("the updater's bundle fails at cold start, naming both modules, when DDB2OS_MAPPING names another module", async () => {
      useEnvironment(bundled.updater.environment, {
        ...updaterEnvironment(newIndex()),
        DDB2OS_MAPPING: JSON.stringify({ transformModule: 'transforms/other.ts' }),
      });
      const { handler } = await loadBundle<{
        handler: (event: DynamoDBStreamEvent, context: Context) => Promise<unknown>;
      }>(bundled.updater.indexFile);

      await expect(handler({ Records: [] }, lambdaContext)).rejects.toThrow(
        `mapping.transformModule names transforms/other.ts, but this function was bundled with ${TRANSFORM}; ` +
          'deploy again so that the two agree',
      );
    });

    it("(Step Functions stubbed) the worker's bundle scans a segment through the bundled transform: the documents are the transform's", async () => {
      // Prepare: the task-token calls go to a stub, the only AWS API here without a local engine.
      const calls: { target: string; body: Record<string, unknown> }[] = [];
      const stepFunctions: Server = createServer((request, response) => {
        let text = '';
        request.on('data', (chunk) => {
          text += chunk;
        });
        request.on('end', () => {
          calls.push({ target: String(request.headers['x-amz-target']), body: JSON.parse(text) });
          response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
        });
      });
      await new Promise<void>((done) => stepFunctions.listen(0, '127.0.0.1', done));
      const index = newIndex();
      const runId = uniqueName('run');
      useEnvironment(bundled.worker.environment, {
        ...updaterEnvironment('ddb2os-unused-default'),
        DDB2OS_PROGRESS_TABLE: progressTable,
        DDB2OS_SEGMENT_QUEUE_URL: 'http://127.0.0.1:9/not-used-when-the-segment-completes',
        AWS_ENDPOINT_URL_SFN: `http://127.0.0.1:${(stepFunctions.address() as AddressInfo).port}`,
      });
      const body = JSON.stringify({
        taskToken: 'token-1',
        runId,
        table,
        index,
        segment: 0,
        totalSegments: 1,
        readUnitsPerSecond: null,
        heartbeatSeconds: 300,
        segmentTimeoutSeconds: 3_600,
      });
      const event = {
        Records: [
          {
            messageId: 'message-1',
            receiptHandle: 'receipt-1',
            body,
            attributes: {},
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:segments',
            awsRegion: 'us-east-1',
          },
        ],
      } as unknown as SQSEvent;
      const { handler } = await loadBundle<{
        handler: (event: SQSEvent, context: Context) => Promise<unknown>;
      }>(bundled.worker.indexFile);

      try {
        // Act
        const response = await handler(event, lambdaContext);

        // Assess
        expect(response).toEqual({ batchItemFailures: [] });
        const success = calls.find((call) => call.target === 'AWSStepFunctions.SendTaskSuccess');
        expect(success?.body.taskToken).toBe('token-1');
        expect(JSON.parse(String(success?.body.output))).toMatchObject({
          segment: 0,
          scanned: 3,
          created: 3,
          failed: 0,
        });
        await expectTransformedDocuments(index);
      } finally {
        await new Promise((done) => stepFunctions.close(done));
      }
    });
  });
});
