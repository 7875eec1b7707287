/**
 * Run markers in the progress table: which run a local backfill of a table
 * into an index is on. One item per table and index,
 * `runId = "local#<table>#<index>"`, `segment = 0`, holding `currentRunId`
 * and its `status`.
 *
 * An interrupted `ddb2os run` finds its run here and resumes it from that
 * run's checkpoints; once the run completes, the next command starts a new
 * one. On AWS, Step Functions keeps the run (the execution), so only the
 * local runner writes these.
 */
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Item } from '../table/types';

/** The run a table's local backfill into an index is on. */
export interface RunMarker {
  runId: string;
  status: 'IN_PROGRESS' | 'COMPLETED';
  startedAt?: string;
}

export class RunMarkerStore {
  constructor(
    private readonly client: DynamoDBClient,
    /** The progress table's name. */
    readonly tableName: string,
  ) {}

  /** The marker of `table` into `index`, if a run was ever started. */
  async get(table: string, index: string): Promise<RunMarker | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: markerKey(table, index), ConsistentRead: true }),
    );
    const runId = Item?.currentRunId?.S;
    if (!runId) return undefined;
    return {
      runId,
      status: Item?.status?.S === 'COMPLETED' ? 'COMPLETED' : 'IN_PROGRESS',
      ...(Item?.startedAt?.S ? { startedAt: Item.startedAt.S } : {}),
    };
  }

  /** Records `runId` as the run in progress (replacing any earlier marker). */
  async start(table: string, index: string, runId: string): Promise<void> {
    await this.put(table, index, runId, {
      status: { S: 'IN_PROGRESS' },
      startedAt: { S: new Date().toISOString() },
    });
  }

  /** Records `runId` as completed: the next run starts afresh. */
  async complete(table: string, index: string, runId: string): Promise<void> {
    await this.put(table, index, runId, {
      status: { S: 'COMPLETED' },
      completedAt: { S: new Date().toISOString() },
    });
  }

  private async put(table: string, index: string, runId: string, fields: Item): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: { ...markerKey(table, index), currentRunId: { S: runId }, ...fields },
      }),
    );
  }
}

function markerKey(table: string, index: string) {
  return { runId: { S: `local#${table}#${index}` }, segment: { N: '0' } };
}
