/**
 * Reliability case 6: bad input. Each mistake a user (or a broken message)
 * can make gets one clear error line, through the CLI as a user sees it
 * (exit code and stderr), and nothing is lost: the table keeps every item, no
 * index is created or half-filled, no segment is checkpointed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
} from '@aws-sdk/client-sfn';
import type { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { processSegmentMessage, type WorkerDeps } from '../../handlers/worker';
import { type BackfillEvent, runLocalBackfill } from '../../local/backfill';
import { freePort } from '../../local/engines/process-group';
import { WorkflowFailedError } from '../../local/workflow';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { ensureProgressTable, SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import { runCli } from '../cli/support';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { dynamodbEndpoint, opensearchUrl, useEngines } from '../support/engines';
import { deadLetterFolder, recordFigures, seededTable, seedItems, tableCount } from './support';

// Before handlers/worker.ts builds its Powertools logger: no log lines in the test output.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const ITEMS = 300;

/** Step Functions has no local engine: this stub records the task-token calls the worker makes. */
class StepFunctionsStub {
  readonly calls: { name: string; input: Record<string, unknown> }[] = [];
  async send(command: SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand) {
    this.calls.push({
      name: command.constructor.name,
      input: command.input as unknown as Record<string, unknown>,
    });
    return {};
  }
}

describe('reliability: bad input gets one clear error line, and nothing is lost', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  let table: string;
  let noStream: string;
  const progressTable = engines.tableName('rel-progress');
  const deadLetterDir = deadLetterFolder();
  const index = engines.indexName('rel-bad');
  const lines: Record<string, string> = {};

  beforeAll(async () => {
    table = engines.deleteTableAfter(await seededTable(dynamodb, 'rel-bad', ITEMS, { padding: 10 }));
    noStream = await engines.createTable('rel-nostream', { keySchema: { partitionKey: 'pk' } });
    await seedItems(
      dynamodb,
      noStream,
      Array.from({ length: 10 }, (_, i) => ({ pk: { S: `p${i}` } })),
    );
  });

  afterAll(() => {
    recordFigures('6 bad input', { cases: Object.keys(lines).length });
    for (const [name, line] of Object.entries(lines))
      console.log(`[reliability] 6 bad input: ${name}: ${line}`);
  });

  /** `ddb2os run` against the real engines, with the flags a test changes. */
  async function run(name: string, flags: Record<string, string>, expectedCode: number, pattern: RegExp) {
    const args = {
      '--table': table,
      '--index': index,
      '--dynamodb-endpoint': dynamodbEndpoint(),
      '--opensearch-url': opensearchUrl(),
      '--progress-table': progressTable,
      '--dead-letter-dir': deadLetterDir,
      ...flags,
    };
    const result = await runCli(['run', ...Object.entries(args).flat()]);
    lines[name] = result.stderr.trim();
    expect(result.code, result.stderr).toBe(expectedCode);
    expect(result.stderr).toMatch(/^ddb2os: [^\n]+\n$/);
    expect(result.stderr).toMatch(pattern);
    expect(result.stdout).toBe('');
  }

  async function expectNothingLost(): Promise<void> {
    expect(await tableCount(dynamodb, table)).toBe(ITEMS);
    expect((await opensearch.indices.exists({ index })).body).toBe(false);
  }

  it('a table that does not exist: exit 1, named', async () => {
    await run(
      'missing table',
      { '--table': 'rel-no-such-table' },
      1,
      /table rel-no-such-table does not exist/,
    );
    await expectNothingLost();
  });

  it('a table without a stream: exit 1, says to enable one', async () => {
    await run('stream disabled', { '--table': noStream }, 1, /has no stream: enable a stream/);
    await expectNothingLost();
    expect(await tableCount(dynamodb, noStream)).toBe(10);
  });

  it('a mapping that needs another key schema (aggregation on a table without a sort key): exit 1, names both', async () => {
    const noSortKey = await engines.createTable('rel-nosort', {
      keySchema: { partitionKey: 'pk' },
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const file = join(deadLetterDir, 'aggregate.json');
    writeFileSync(file, JSON.stringify({ aggregate: { parentSortKey: 'META', childrenField: 'lines' } }));

    await run(
      'wrong key schema',
      { '--table': noSortKey, '--mapping': file },
      1,
      /mapping\.aggregate needs a table with a sort key, and this table has only the partition key pk/,
    );
    await expectNothingLost();
  });

  it('malformed workflow input (totalSegments "ten"): refused before the workflow starts, and by the workflow itself', async () => {
    await run('segments "ten"', { '--segments': 'ten' }, 2, /--segments must be a whole number/);
    const start = await runCli([
      'start',
      '--state-machine-arn',
      'arn:aws:states:us-east-1:123456789012:stateMachine:ddb2os',
      '--input',
      '{"totalSegments":"ten"}',
    ]);
    lines['start --input'] = start.stderr.trim();
    expect(start.code).toBe(2);
    expect(start.stderr).toBe(
      'ddb2os: --input: totalSegments must be an integer from 1 to 1,000,000, not "ten"\n',
    );

    // The workflow given the same input (as start-execution would): the plan refuses it, no segment runs.
    const events: BackfillEvent[] = [];
    const error = await runLocalBackfill(
      localBackfillOptions(
        engines,
        { table, index, progressTable, deadLetterDir },
        { restart: true, input: { totalSegments: 'ten' } as never, onEvent: (event) => events.push(event) },
      ),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(error).toMatchObject({
      error: 'ConfigurationError',
      causeText: 'totalSegments must be an integer from 1 to 1,000,000, not "ten"',
    });
    expect(events.filter((event) => event.type === 'segment-start')).toEqual([]);
    expect(events.some((event) => event.type === 'updater' && event.state === 'Enabled')).toBe(false);
    await expectNothingLost();
  });

  it('unreachable DynamoDB or OpenSearch: exit 1, names the endpoint', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    await run(
      'DynamoDB unreachable',
      { '--dynamodb-endpoint': closed },
      1,
      new RegExp(`cannot reach DynamoDB at ${closed}: connect ECONNREFUSED`),
    );
    await run(
      'OpenSearch unreachable',
      { '--opensearch-url': closed },
      1,
      new RegExp(`cannot reach OpenSearch at ${closed}: connect ECONNREFUSED`),
    );
    await expectNothingLost();
  });

  it('an index name OpenSearch rejects (uppercase, a leading _): exit 2, says why', async () => {
    // OpenSearch itself refuses both names.
    for (const name of ['Orders', '_x']) {
      const refused = await opensearch.indices
        .create({ index: name })
        .catch((e: { meta?: { body?: unknown } }) => e);
      expect(JSON.stringify((refused as { meta?: { body?: unknown } }).meta?.body)).toContain(
        'invalid_index_name_exception',
      );
    }

    await run(
      'index "Orders"',
      { '--index': 'Orders' },
      2,
      /--index "Orders" is not a valid index name: it must be lowercase/,
    );
    await run(
      'index "_x"',
      { '--index': '_x' },
      2,
      /--index "_x" is not a valid index name: it must not start with -, _ or \+/,
    );
    const routes = join(deadLetterDir, 'routes.json');
    writeFileSync(routes, JSON.stringify({ routes: [{ prefix: 'customer#', index: 'Customers' }] }));
    await run(
      'route index "Customers"',
      { '--mapping': routes },
      2,
      /routes\[0\]\.index .*must be lowercase/,
    );
    await expectNothingLost();
  });

  it('malformed SQS segment messages, through the worker (Step Functions and SQS stubbed: no local engine for task tokens)', async () => {
    await ensureProgressTable(dynamodb, progressTable);
    const checkpoints = new SegmentCheckpointStore(dynamodb, progressTable);
    const stepFunctions = new StepFunctionsStub();
    const continuations: string[] = [];
    const deps: WorkerDeps = {
      dynamodb,
      opensearch,
      checkpoints,
      deadLetters: new DirectoryDeadLetterSink(deadLetterDir),
      mapping: { index },
      stepFunctions,
      sqs: {
        send: async (command: SendMessageCommand) => {
          continuations.push(command.input.MessageBody ?? '');
          return {};
        },
      },
      queueUrl: 'https://sqs.local/segments',
      table,
      keySchemas: new Map(),
    };
    const context = { getRemainingTimeInMillis: () => 600_000 };
    const message = (fields: Record<string, unknown>) =>
      JSON.stringify({
        taskToken: 'token',
        runId: 'rel-bad-run',
        table,
        index,
        segment: 0,
        totalSegments: 2,
        ...fields,
      });

    // Without a usable token nobody can be told: the message goes back to SQS and on to its dead-letter queue.
    await expect(processSegmentMessage('{"segment": 0', deps, context)).rejects.toThrow(
      'the segment message is not JSON',
    );
    await expect(processSegmentMessage(JSON.stringify({ segment: 0 }), deps, context)).rejects.toThrow(
      'the segment message has no taskToken, so Step Functions cannot be told',
    );
    expect(stepFunctions.calls).toEqual([]);

    // With a token: the workflow is told, in one sentence, and never retries (InvalidMessageError, SourceTableError).
    const refused = [
      [
        { totalSegments: 'ten' },
        /^the segment message's totalSegments must be an integer of at least 1, not "ten"$/,
      ],
      [{ segment: 2 }, /^the segment message's segment 2 is not below its totalSegments 2$/],
      [
        { index: 'Orders' },
        /^the segment message's index "Orders" is not a valid index name: it must be lowercase$/,
      ],
      [
        { table: 'another-table' },
        /^this worker backfills table \S+, but the message names table another-table$/,
      ],
    ] as const;
    for (const [fields, sentence] of refused) {
      const outcome = await processSegmentMessage(message(fields), deps, context);
      expect(outcome).toMatchObject({ action: 'failed', cause: expect.stringMatching(sentence) });
      const failure = stepFunctions.calls.at(-1);
      expect(failure?.name).toBe('SendTaskFailureCommand');
      expect(failure?.input).toMatchObject({ taskToken: 'token', cause: expect.stringMatching(sentence) });
      lines[`SQS ${JSON.stringify(fields)}`] = `${failure?.input.error}: ${failure?.input.cause}`;
    }
    expect(stepFunctions.calls.map((call) => call.input.error).filter(Boolean)).toEqual([
      'InvalidMessageError',
      'InvalidMessageError',
      'InvalidMessageError',
      'SourceTableError',
    ]);
    expect(continuations).toEqual([]);
    expect(await checkpoints.listCheckpoints('rel-bad-run')).toEqual([]);
    await expectNothingLost();
  });
});
