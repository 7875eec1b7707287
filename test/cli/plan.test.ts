import { DescribeTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ITEMS_PER_SECOND_PER_SEGMENT } from '../../cli/estimate';
import { planSegments } from '../../pipeline/plan/plan-segments';
import { createTable, deleteTable, dynamoClient, dynamodbEndpoint, uniqueName } from '../support/engines';
import { lastJsonLine, runCli, runPlanJson } from './support';

const ITEMS = 12;

describe('ddb2os plan (real DynamoDB Local)', () => {
  const client = dynamoClient();
  let table: string;
  let figures: { itemCount: number; tableSizeBytes: number };
  let description: unknown;
  /** What the workflow's planner chooses for this table. */
  const plannedSegments = (settings: { targetSegmentBytes?: number } = {}) =>
    planSegments({ runId: 'plan', config: {}, table: description }, { defaultIndex: 'plan', ...settings })
      .totalSegments;

  beforeAll(async () => {
    table = await createTable(client, uniqueName('plan'), {
      keySchema: { partitionKey: 'pk' },
      stream: 'NEW_IMAGE',
    });
    for (let i = 0; i < ITEMS; i += 1) {
      await client.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: `order#${i}` }, body: { S: 'x'.repeat(2_000) }, n: { N: String(i) } },
        }),
      );
    }
    // DynamoDB Local counts at once; the service updates these about every six hours. The plan
    // must agree with whatever DescribeTable says, so the test reads the same figures.
    const described = await client.send(new DescribeTableCommand({ TableName: table }));
    description = described.Table;
    figures = {
      itemCount: described.Table?.ItemCount ?? 0,
      tableSizeBytes: described.Table?.TableSizeBytes ?? 0,
    };
  });

  afterAll(async () => {
    await deleteTable(client, table);
  });

  it('prints the segment count, per-segment figures, read units with their formula, cost and time with its assumption', async () => {
    // Act
    const result = await runCli(['plan', '--table', table, '--dynamodb-endpoint', dynamodbEndpoint()]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const rru = Math.ceil(figures.tableSizeBytes / 4096) / 2;
    const out = result.stdout;
    expect(out).toContain(`Table ${table} (${dynamodbEndpoint()}, on-demand)\n`);
    expect(out).toMatch(new RegExp(`^ {2}items +${figures.itemCount.toLocaleString('en-US')}$`, 'm'));
    expect(out).toContain('from DescribeTable, which DynamoDB updates about every six hours');
    expect(out).toMatch(new RegExp(`^ {2}segments +${plannedSegments()}$`, 'm'));
    expect(out).toMatch(/^ {2}per segment +[\d,]+ items, /m);
    expect(out).toMatch(
      new RegExp(`^ {2}read request units +${rru.toLocaleString('en-US')} for one full scan$`, 'm'),
    );
    expect(out).toContain(
      'eventually consistent Scan: 0.5 RRU per 4 KB read = ceil(tableSizeBytes / 4096) / 2',
    );
    expect(out).toMatch(
      /^ {2}read cost +(under \$0\.01|\$[\d.,]+) at \$0\.125 per million RRU \(on-demand\)$/m,
    );
    expect(out).toMatch(/^ {2}time +about \d/m);
    expect(out).toContain('at 1,315 items/s per segment (the benchmark (docs/benchmarks.md))');
    // The model's inputs, each with where it came from.
    const inputs = out.slice(out.indexOf('\nModel inputs\n'));
    expect(inputs).toMatch(
      new RegExp(`^ {2}items +${figures.itemCount.toLocaleString('en-US')} \\(DescribeTable\\)$`, 'm'),
    );
    expect(inputs).toMatch(
      new RegExp(
        `^ {2}table size +${figures.tableSizeBytes.toLocaleString('en-US')} bytes \\(DescribeTable\\)$`,
        'm',
      ),
    );
    expect(inputs).toMatch(
      new RegExp(
        `^ {2}average item +${Math.round(figures.tableSizeBytes / figures.itemCount).toLocaleString('en-US')} bytes$`,
        'm',
      ),
    );
    expect(inputs).toMatch(
      new RegExp(`^ {2}segments +${plannedSegments()}, ${plannedSegments()} at a time$`, 'm'),
    );
    expect(inputs).toMatch(/^ {2}items\/s per segment +1,315 \(the benchmark \(docs\/benchmarks\.md\)\)$/m);
    expect(inputs).toMatch(/^ {2}read limit +none$/m);
    expect(inputs).toMatch(/^ {2}price +\$0\.125 per million RRU$/m);
    expect(inputs).toMatch(/^ {2}formula +seconds = waves x \(items per segment \/ items\/s per segment\)$/m);
  });

  it('--items-per-second-per-segment sets the pace, and the printed inputs say it was given', async () => {
    // Act
    const text = await runCli([
      'plan',
      '--table',
      table,
      '--dynamodb-endpoint',
      dynamodbEndpoint(),
      '--segments',
      '2',
      '--items-per-second-per-segment',
      '3',
    ]);
    const json = await runPlanJson(table, ['--segments', '2', '--items-per-second-per-segment', '3']);

    // Assess
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^ {2}items\/s per segment +3 \(given \(--items-per-second-per-segment\)\)$/m,
    );
    expect(text.stdout).toContain('at 3 items/s per segment (given (--items-per-second-per-segment))');
    expect(json.code).toBe(0);
    const plan = lastJsonLine(json.stdout);
    // One wave: the items of a segment at 3 items/s.
    expect(plan.seconds).toBeCloseTo(figures.itemCount / 2 / 3, 6);
    expect(plan.modelInputs).toMatchObject({
      itemsPerSecondPerSegment: 3,
      itemsPerSecondPerSegmentFrom: 'given (--items-per-second-per-segment)',
      totalSegments: 2,
      parallelSegments: 2,
    });
    // Not a workflow input: the pace is the model's, not the run's.
    expect(plan.startInput).toEqual({ totalSegments: 2 });
  });

  it('--json gives the same plan as one object, with the figures DescribeTable reports', async () => {
    // Act
    const result = await runPlanJson(table, [
      '--segments',
      '4',
      '--concurrency',
      '2',
      '--price-per-million-rru',
      '0.25',
    ]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const plan = lastJsonLine(result.stdout);
    const rru = Math.ceil(figures.tableSizeBytes / 4096) / 2;
    expect(plan).toMatchObject({
      table,
      source: { endpoint: dynamodbEndpoint() },
      billingMode: 'PAY_PER_REQUEST',
      itemCount: figures.itemCount,
      tableSizeBytes: figures.tableSizeBytes,
      totalSegments: 4,
      itemsPerSegment: figures.itemCount / 4,
      bytesPerSegment: figures.tableSizeBytes / 4,
      readRequestUnits: rru,
      pricePerMillionRru: 0.25,
      readCostUsd: (rru / 1e6) * 0.25,
      parallelSegments: 2,
      waves: 2,
      basis: 'assumed-throughput',
      startInput: { totalSegments: 4, maxConcurrency: 2 },
    });
    expect(plan.seconds).toBeCloseTo((2 * (figures.itemCount / 4)) / ITEMS_PER_SECOND_PER_SEGMENT, 6);
    expect(String(plan.figuresFrom)).toContain('about every six hours');
  });

  it('--read-units-per-second sets the pace: RRU / (limit x segments at a time)', async () => {
    // Act
    const result = await runPlanJson(table, [
      '--segments',
      '3',
      '--concurrency',
      '8',
      '--read-units-per-second',
      '0.5',
    ]);

    // Assess
    expect(result.code).toBe(0);
    const plan = lastJsonLine(result.stdout);
    const rru = Math.ceil(figures.tableSizeBytes / 4096) / 2;
    expect(plan).toMatchObject({ basis: 'read-limit', parallelSegments: 3, readRateRruPerSecond: 1.5 });
    expect(plan.seconds).toBeCloseTo(rru / 1.5, 6);
    expect(plan.startInput).toEqual({ totalSegments: 3, maxConcurrency: 8, readUnitsPerSecond: 0.5 });
  });

  it('--target-segment-mib reaches the planner', async () => {
    // Act: about 4 KiB per segment.
    const result = await runPlanJson(table, ['--target-segment-mib', '0.004']);

    // Assess
    expect(result.code).toBe(0);
    const expected = plannedSegments({ targetSegmentBytes: Math.round(0.004 * 1024 * 1024) });
    expect(expected).toBeGreaterThan(1);
    expect(lastJsonLine(result.stdout).totalSegments).toBe(expected);
  });

  it('still plans a table without a stream, and says the workflow refuses it until one is enabled', async () => {
    // Prepare
    const noStream = await createTable(client, uniqueName('plan-no-stream'), {
      keySchema: { partitionKey: 'pk' },
    });

    try {
      // Act
      const result = await runCli(['plan', '--table', noStream, '--dynamodb-endpoint', dynamodbEndpoint()]);

      // Assess
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(
        `  note: table ${noStream} has no stream: enable a stream (NEW_IMAGE or NEW_AND_OLD_IMAGES) so its changes reach the index (the workflow refuses the table until then)\n`,
      );
      expect(result.stdout).toMatch(/^ {2}segments +1$/m);
    } finally {
      await deleteTable(client, noStream);
    }
  });

  it('a missing table is one line naming it and the endpoint, exit 1', async () => {
    // Prepare
    const missing = uniqueName('no-such-table');

    // Act
    const result = await runCli(['plan', '--table', missing, '--dynamodb-endpoint', dynamodbEndpoint()]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`ddb2os: table ${missing} does not exist at ${dynamodbEndpoint()}\n`);
    expect(result.stdout).toBe('');
  });

  it.each([
    [['--dynamodb-endpoint', 'http://127.0.0.1:1'], '--table is required'],
    [['--table', 't', '--segments', '0'], '--segments must be a whole number from 1 to 1000000, got "0"'],
    [['--table', 't', '--concurrency', 'many'], '--concurrency must be a whole number'],
    [['--table', 't', '--price-per-million-rru', '0'], '--price-per-million-rru must be a positive number'],
    [
      ['--table', 't', '--items-per-second-per-segment', 'fast'],
      '--items-per-second-per-segment must be a positive number, got "fast"',
    ],
    [
      ['--table', 't', '--dynamodb-endpoint', 'localhost:8000'],
      '--dynamodb-endpoint "localhost:8000" is not an http(s) URL',
    ],
  ])('rejects plan %j as a usage error, exit 2', async (argv, message) => {
    // Act
    const result = await runCli(['plan', ...argv]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});
