import type { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { indexDefinitionSubstitution, readIndexDefinition } from '../../../pipeline/index/index-definition';
import {
  DEFAULT_TARGET_SEGMENT_BYTES,
  MAX_INLINE_SEGMENT_LIST_BYTES,
  planBackfill,
  planSegments,
  segmentCount,
  segmentListBytes,
  targetIndices,
  validateWorkflowConfig,
} from '../../../pipeline/plan/plan-segments';
import { deleteIndex, openSearchClient, uniqueName } from '../../support/engines';

const MiB = 1024 * 1024;

/** DescribeTable's Table as Step Functions passes it (JSON). */
function table(overrides: Record<string, unknown> = {}) {
  return {
    TableName: 'orders',
    ItemCount: 1_000_000,
    TableSizeBytes: 1_000 * MiB,
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    CreationDateTime: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

const fixedNow = () => new Date('2025-06-01T10:00:00.000Z');

describe('segmentCount', () => {
  it.each([
    [0, 1],
    [1, 1],
    [DEFAULT_TARGET_SEGMENT_BYTES, 1],
    [DEFAULT_TARGET_SEGMENT_BYTES + 1, 2],
    [1_000 * MiB, 4],
    [10 * 1024 ** 4, 40_960],
    [2 ** 60, 1_000_000],
  ])('cuts %d bytes into %d segments of at most 256 MiB, between 1 and 1,000,000', (bytes, segments) => {
    expect(segmentCount(bytes)).toBe(segments);
  });

  it('uses the target segment size it is given', () => {
    expect(segmentCount(1_000 * MiB, 100 * MiB)).toBe(10);
  });
});

describe('planSegments', () => {
  it('plans from the table size with the segment list inline', () => {
    // Act
    const plan = planSegments(
      { runId: 'run-1', config: { index: 'orders', maxConcurrency: 10 }, table: table() },
      { now: fixedNow, bucket: 'plans-bucket' },
    );

    // Assess
    expect(plan).toEqual({
      runId: 'run-1',
      table: 'orders',
      index: 'orders',
      totalSegments: 4,
      itemSource: 'INLINE',
      segments: [0, 1, 2, 3],
      startedAt: '2025-06-01T10:00:00.000Z',
      keySchema: { partitionKey: 'pk', sortKey: 'sk' },
      itemCount: 1_000_000,
      tableSizeBytes: 1_000 * MiB,
    });
  });

  it('lets an explicit totalSegments win over the table size', () => {
    const plan = planSegments({ runId: 'r', config: { totalSegments: 77, index: 'i' }, table: table() });
    expect(plan.totalSegments).toBe(77);
    expect(plan.segments).toHaveLength(77);
  });

  it('treats null totalSegments and readUnitsPerSecond as "not set", and takes the default index', () => {
    const plan = planSegments(
      {
        runId: 'r',
        config: { totalSegments: null, readUnitsPerSecond: null },
        table: table({ TableSizeBytes: 0 }),
      },
      { defaultIndex: 'fallback' },
    );
    expect(plan).toMatchObject({ totalSegments: 1, index: 'fallback', segments: [0] });
  });

  it('keeps the list inline up to about 200 KiB of JSON and writes a longer one to S3', () => {
    // Prepare: the largest count whose list still fits
    let inline = 1;
    while (segmentListBytes(inline + 1) <= MAX_INLINE_SEGMENT_LIST_BYTES) inline++;

    // Act
    const small = planSegments(
      { runId: 'r', config: { totalSegments: inline, index: 'i' }, table: table() },
      { bucket: 'b' },
    );
    const large = planSegments(
      { runId: 'run-9', config: { totalSegments: inline + 1, index: 'i' }, table: table() },
      { bucket: 'b' },
    );
    const local = planSegments({
      runId: 'r',
      config: { totalSegments: 1_000_000, index: 'i' },
      table: table(),
    });

    // Assess
    expect(JSON.stringify(small.segments).length).toBe(segmentListBytes(inline));
    expect(JSON.stringify(small.segments).length).toBeLessThanOrEqual(200 * 1024);
    expect(small.itemSource).toBe('INLINE');
    expect(large).toMatchObject({ itemSource: 'S3', bucket: 'b', key: 'plans/run-9/segments.json' });
    expect(large.segments).toBeUndefined();
    expect(local.itemSource).toBe('INLINE'); // no bucket: a local run
  });

  it('counts list bytes exactly', () => {
    for (const count of [1, 9, 10, 11, 99, 100, 101, 12_345, 1_000_000]) {
      expect(segmentListBytes(count)).toBe(JSON.stringify(Array.from({ length: count }, (_, i) => i)).length);
    }
  });

  it('refuses a table without a stream with one sentence', () => {
    expect(() =>
      planSegments({ runId: 'r', config: { index: 'i' }, table: table({ StreamSpecification: undefined }) }),
    ).toThrow(
      expect.objectContaining({
        name: 'SourceTableError',
        message:
          'table orders has no stream: enable a stream (NEW_IMAGE or NEW_AND_OLD_IMAGES) so its changes reach the index',
      }),
    );
  });

  it('creates a run id when the input has none', () => {
    const plan = planSegments({ config: { index: 'i' }, table: table() });
    expect(plan.runId).toMatch(/^orders-\d{4}-/);
  });
});

describe('validateWorkflowConfig', () => {
  it.each([
    [{ totalSegments: 0 }, 'totalSegments must be an integer from 1 to 1,000,000, not 0'],
    [{ totalSegments: 1_000_001 }, 'totalSegments must be an integer from 1 to 1,000,000, not 1000001'],
    [{ totalSegments: '8' }, 'totalSegments must be an integer from 1 to 1,000,000, not "8"'],
    [{ totalSegments: 2.5 }, 'totalSegments must be an integer from 1 to 1,000,000, not 2.5'],
    [{ maxConcurrency: 0 }, 'maxConcurrency must be an integer from 1 to 10,000, not 0'],
    [{ maxConcurrency: '10' }, 'maxConcurrency must be an integer from 1 to 10,000, not "10"'],
    [
      { readUnitsPerSecond: -5 },
      'readUnitsPerSecond must be a positive number of read capacity units per second per segment, not -5',
    ],
    [{ index: 42 }, 'index must be a non-empty string, not 42'],
    [{ index: 'Orders' }, 'index "Orders" is not a valid index name: it must be lowercase'],
    [{ retentionBudgetHours: 30 }, 'retentionBudgetHours must be a number of hours above 0 and at most 24'],
    [{ totalSegment: 8 }, 'the workflow input field totalSegment is not known'],
  ])('refuses %j naming the field', (config, sentence) => {
    expect(() => validateWorkflowConfig(config)).toThrow(
      expect.objectContaining({ name: 'ConfigurationError', message: expect.stringContaining(sentence) }),
    );
  });

  it('accepts the defaults the workflow merges in', () => {
    expect(
      validateWorkflowConfig({
        totalSegments: null,
        maxConcurrency: 10,
        readUnitsPerSecond: 0.5,
        index: 'orders',
        retentionBudgetHours: 23,
      }),
    ).toEqual({ maxConcurrency: 10, readUnitsPerSecond: 0.5, index: 'orders', retentionBudgetHours: 23 });
  });
});

describe('targetIndices', () => {
  it('lists the default index and every route index once', () => {
    expect(
      targetIndices({
        index: 'main',
        routes: [
          { prefix: 'A#', index: 'a' },
          { prefix: 'B#', index: 'main' },
        ],
      }),
    ).toEqual(['main', 'a']);
  });
});

describe('planBackfill', () => {
  const opensearch = openSearchClient();
  const created: string[] = [];

  afterAll(async () => {
    await Promise.all(created.map((index) => deleteIndex(opensearch, index)));
  });

  it('(S3 stubbed) writes a long segment list to S3 as a JSON array and prepares every target index', async () => {
    // Prepare
    const index = uniqueName('plan');
    const routed = uniqueName('plan-routed');
    created.push(index, routed);
    const puts: { Bucket?: string; Key?: string; Body?: unknown }[] = [];
    const s3 = { send: async (command: PutObjectCommand) => puts.push(command.input) } as unknown as S3Client;

    // Act
    const plan = await planBackfill(
      { runId: 'run-big', config: { totalSegments: 50_000, index }, table: table() },
      {
        opensearch,
        mapping: { index: 'replaced-by-the-plan', routes: [{ prefix: 'R#', index: routed }] },
        planStore: { s3, bucket: 'plans-bucket' },
      },
    );

    // Assess
    expect(plan).toMatchObject({
      itemSource: 'S3',
      bucket: 'plans-bucket',
      key: 'plans/run-big/segments.json',
    });
    expect(plan.indices).toEqual([
      { index, action: 'created' },
      { index: routed, action: 'created' },
    ]);
    expect(puts).toHaveLength(1);
    expect(puts[0]).toMatchObject({ Bucket: 'plans-bucket', Key: 'plans/run-big/segments.json' });
    const list = JSON.parse(puts[0]?.Body as string) as number[];
    expect(list).toHaveLength(50_000);
    expect(list.every((segment, i) => segment === i)).toBe(true);
  });

  it('creates every target index with the index definition the state machine passes, and warns when one existed', async () => {
    // Prepare: the indexConfig as the "Plan segments" state passes it (the substituted JSON text).
    const index = uniqueName('plan-config');
    const routed = uniqueName('plan-config-routed');
    created.push(index, routed);
    await opensearch.indices.create({ index: routed });
    const definition = readIndexDefinition(
      { mappings: { properties: { sku: { type: 'keyword' } } } },
      "the deployment's indexConfig",
    );
    const indexConfig = JSON.parse(`"${indexDefinitionSubstitution(definition)}"`) as string;

    // Act
    const plan = await planBackfill(
      { runId: 'run-config', config: { index }, table: table(), indexConfig },
      { opensearch, mapping: { index, routes: [{ prefix: 'R#', index: routed }] } },
    );

    // Assess
    expect(plan.indices).toEqual([
      { index, action: 'created' },
      { index: routed, action: 'existing' },
    ]);
    const mapping = (await opensearch.indices.getMapping({ index })).body as Record<
      string,
      { mappings: { properties: Record<string, unknown> } }
    >;
    expect(mapping[index]?.mappings.properties.sku).toEqual({ type: 'keyword' });
    expect(plan.warnings).toEqual([
      `index ${routed} already exists: the deployment's indexConfig is not applied to it (ddb2os applies it only when it creates an index)`,
    ]);
  });
});
