/**
 * Segment checkpoints in the progress table (pk `runId` S, sk `segment` N).
 *
 * A checkpoint says: every item of this segment before `lastEvaluatedKey` is
 * in OpenSearch (or in the dead-letter place), and these are its cumulative
 * counts. A resumed or repeated run starts from it, so it neither misses nor
 * counts an item twice.
 *
 * Ownership: each invocation that works on a segment claims it (a new
 * `leaseOwner`, `version` + 1), and every later write is conditional on that
 * version. A newer claim therefore stops an older invocation at its next
 * write (CheckpointConflictError): two invocations never both advance a
 * segment. A COMPLETED checkpoint is never claimed again; a repeated message
 * gets its stored result.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import type { FieldConflictCount } from '../bulk/field-conflicts';
import { CheckpointConflictError, InvalidMessageError } from '../errors';
import {
  emptyCounts,
  type Item,
  type SegmentCounts,
  type SegmentResult,
  type SegmentStatus,
} from '../table/types';

export interface SegmentCheckpoint {
  runId: string;
  segment: number;
  totalSegments: number;
  status: SegmentStatus;
  /** Where the next page starts (wire form); absent: from the segment's beginning. */
  lastEvaluatedKey?: Item;
  /** Cumulative counts of everything before lastEvaluatedKey. */
  counts: SegmentCounts;
  /** Fields whose type in the index did not fit an item (those items are among counts.failed), cumulative. */
  fieldConflicts?: FieldConflictCount[];
  /** Scan pages read, cumulative. */
  pages: number;
  startedAt: string;
  updatedAt: string;
  completedAt?: string;
  /** The last failure, as one sentence (status FAILED). */
  error?: string;
  /** The invocation that owns the segment now. */
  leaseOwner: string;
  /** Increases with every write; writes are conditional on it. */
  version: number;
}

const COUNT_FIELDS = ['scanned', 'created', 'alreadyPresent', 'failed', 'skipped', 'retried'] as const;

/** The SegmentResult that a completed checkpoint stands for. */
export function checkpointResult(checkpoint: SegmentCheckpoint): SegmentResult {
  const end = checkpoint.completedAt ?? checkpoint.updatedAt;
  return {
    segment: checkpoint.segment,
    totalSegments: checkpoint.totalSegments,
    ...checkpoint.counts,
    pages: checkpoint.pages,
    durationMs: Math.max(0, Date.parse(end) - Date.parse(checkpoint.startedAt)),
  };
}

export class SegmentCheckpointStore {
  constructor(
    private readonly client: DynamoDBClient,
    /** The progress table's name. */
    readonly tableName: string,
  ) {}

  async get(runId: string, segment: number): Promise<SegmentCheckpoint | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { runId: { S: runId }, segment: { N: String(segment) } },
        ConsistentRead: true,
      }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  /**
   * Takes the segment over for `owner` and returns its checkpoint: a new one
   * when there is none, the stored one (now owned by `owner`) to resume from,
   * or a COMPLETED one as it is (nothing to do). Throws
   * CheckpointConflictError when another invocation claims it at the same
   * moment, InvalidMessageError when the segment was checkpointed under a
   * different segment count.
   */
  async claim(
    target: { runId: string; segment: number; totalSegments: number },
    owner: string,
  ): Promise<SegmentCheckpoint> {
    const existing = await this.get(target.runId, target.segment);
    const now = new Date().toISOString();
    if (existing === undefined) {
      const fresh: SegmentCheckpoint = {
        ...target,
        status: 'IN_PROGRESS',
        counts: emptyCounts(),
        pages: 0,
        startedAt: now,
        updatedAt: now,
        leaseOwner: owner,
        version: 1,
      };
      await this.put(fresh, 'attribute_not_exists(runId)', {}, target);
      return fresh;
    }
    if (existing.totalSegments !== target.totalSegments) {
      throw new InvalidMessageError(
        `segment ${target.segment} of run ${target.runId} was checkpointed as one of ${existing.totalSegments} segments, but the message says ${target.totalSegments}`,
      );
    }
    if (existing.status === 'COMPLETED') return existing;
    const claimed: SegmentCheckpoint = {
      ...existing,
      status: 'IN_PROGRESS',
      error: undefined,
      updatedAt: now,
      leaseOwner: owner,
      version: existing.version + 1,
    };
    await this.put(claimed, 'version = :expected', { ':expected': { N: String(existing.version) } }, target);
    return claimed;
  }

  /**
   * Writes `next` if the stored checkpoint is still `current` (same version,
   * same owner), and returns it with its new version. Throws
   * CheckpointConflictError when another invocation has claimed the segment.
   */
  async save(
    current: SegmentCheckpoint,
    next: Omit<SegmentCheckpoint, 'version'>,
  ): Promise<SegmentCheckpoint> {
    const saved: SegmentCheckpoint = {
      ...next,
      updatedAt: new Date().toISOString(),
      version: current.version + 1,
    };
    await this.put(
      saved,
      'version = :expected AND leaseOwner = :owner',
      { ':expected': { N: String(current.version) }, ':owner': { S: current.leaseOwner } },
      current,
    );
    return saved;
  }

  /** Marks the segment FAILED with a reason, if this invocation still owns it (otherwise does nothing). */
  async fail(current: SegmentCheckpoint, reason: string): Promise<void> {
    try {
      await this.save(current, { ...current, status: 'FAILED', error: reason.slice(0, 4000) });
    } catch (error) {
      if (!(error instanceof CheckpointConflictError)) throw error;
    }
  }

  /** Every checkpoint of a run, in segment order (a paginated Query). */
  async listCheckpoints(runId: string): Promise<SegmentCheckpoint[]> {
    const checkpoints: SegmentCheckpoint[] = [];
    for await (const checkpoint of this.checkpointsOf(runId)) checkpoints.push(checkpoint);
    return checkpoints;
  }

  /**
   * The run's checkpoints one Query page at a time, in segment order, so
   * that a run of a million segments is summed without holding them all.
   */
  async *checkpointsOf(runId: string): AsyncGenerator<SegmentCheckpoint> {
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'runId = :runId',
          ExpressionAttributeValues: { ':runId': { S: runId } },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) yield fromItem(item);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  private async put(
    checkpoint: SegmentCheckpoint,
    condition: string,
    values: Record<string, AttributeValue>,
    target: { runId: string; segment: number },
  ): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: toItem(checkpoint),
          ConditionExpression: condition,
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new CheckpointConflictError(
          `segment ${target.segment} of run ${target.runId} is owned by another invocation; this one stands down`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function toItem(checkpoint: SegmentCheckpoint): Item {
  const item: Item = {
    runId: { S: checkpoint.runId },
    segment: { N: String(checkpoint.segment) },
    totalSegments: { N: String(checkpoint.totalSegments) },
    status: { S: checkpoint.status },
    pages: { N: String(checkpoint.pages) },
    startedAt: { S: checkpoint.startedAt },
    updatedAt: { S: checkpoint.updatedAt },
    leaseOwner: { S: checkpoint.leaseOwner },
    version: { N: String(checkpoint.version) },
  };
  for (const field of COUNT_FIELDS) item[field] = { N: String(checkpoint.counts[field]) };
  if (checkpoint.lastEvaluatedKey) item.lastEvaluatedKey = { S: encodeKey(checkpoint.lastEvaluatedKey) };
  if (checkpoint.completedAt) item.completedAt = { S: checkpoint.completedAt };
  if (checkpoint.error) item.error = { S: checkpoint.error };
  if (checkpoint.fieldConflicts?.length)
    item.fieldConflicts = { S: JSON.stringify(checkpoint.fieldConflicts) };
  return item;
}

function fromItem(item: Item): SegmentCheckpoint {
  const number = (name: string): number => Number(item[name]?.N ?? 0);
  const text = (name: string): string | undefined => item[name]?.S;
  const counts = emptyCounts();
  for (const field of COUNT_FIELDS) counts[field] = number(field);
  const key = text('lastEvaluatedKey');
  const conflicts = text('fieldConflicts');
  return {
    runId: text('runId') ?? '',
    segment: number('segment'),
    totalSegments: number('totalSegments'),
    status: (text('status') ?? 'IN_PROGRESS') as SegmentStatus,
    ...(key ? { lastEvaluatedKey: decodeKey(key) } : {}),
    counts,
    pages: number('pages'),
    startedAt: text('startedAt') ?? '',
    updatedAt: text('updatedAt') ?? '',
    ...(text('completedAt') ? { completedAt: text('completedAt') } : {}),
    ...(text('error') ? { error: text('error') } : {}),
    ...(conflicts ? { fieldConflicts: JSON.parse(conflicts) as FieldConflictCount[] } : {}),
    leaseOwner: text('leaseOwner') ?? '',
    version: number('version'),
  };
}

/**
 * A key (S, N or B attributes) as DynamoDB's own JSON wire form, binary as
 * base64, so it round-trips exactly: `{"pk":{"S":"a"},"sk":{"B":"AAE="}}`.
 */
export function encodeKey(key: Item): string {
  const wire: Record<string, { S: string } | { N: string } | { B: string }> = {};
  for (const [name, value] of Object.entries(key)) {
    if (typeof value.S === 'string') wire[name] = { S: value.S };
    else if (typeof value.N === 'string') wire[name] = { N: value.N };
    else if (value.B instanceof Uint8Array) wire[name] = { B: Buffer.from(value.B).toString('base64') };
    else throw new TypeError(`key attribute ${name} is not S, N or B`);
  }
  return JSON.stringify(wire);
}

export function decodeKey(text: string): Item {
  const wire = JSON.parse(text) as Record<string, { S?: string; N?: string; B?: string }>;
  const key: Item = {};
  for (const [name, value] of Object.entries(wire)) {
    if (value.S !== undefined) key[name] = { S: value.S };
    else if (value.N !== undefined) key[name] = { N: value.N };
    else if (value.B !== undefined) key[name] = { B: new Uint8Array(Buffer.from(value.B, 'base64')) };
  }
  return key;
}

/**
 * Creates the progress table when it is missing (PAY_PER_REQUEST, pk `runId`
 * S, sk `segment` N) and waits until it is ACTIVE. For local runs and tests;
 * the CDK stack creates it on AWS.
 */
export async function ensureProgressTable(client: DynamoDBClient, name: string): Promise<void> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: [
            { AttributeName: 'runId', KeyType: 'HASH' },
            { AttributeName: 'segment', KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: 'runId', AttributeType: 'S' },
            { AttributeName: 'segment', AttributeType: 'N' },
          ],
        }),
      );
    } catch (createError) {
      // Another process created it meanwhile: wait for it like for our own.
      if (!(createError instanceof ResourceInUseException)) throw createError;
    }
  }
  await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1 }, { TableName: name });
}
