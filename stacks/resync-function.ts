/**
 * The resync function: the steps of the workflow's resync mode (handlers/resync.ts).
 * It creates and deletes indices, moves aliases and removes tombstones in
 * OpenSearch, and reads and writes the table's resync state in the progress
 * table; nothing else.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { ENV } from '../pipeline/contract/env';
import { HandlerFunction } from './handler-function';

/** What the resync function needs from the workflow. */
export interface ResyncFunctionProps {
  /** The table being resynced (its name keys the resync state). */
  readonly tableName: string;
  /** Where the resync state is; the function gets read and conditional write access to its items. */
  readonly progressTable: ITable;
  /** Where OpenSearch is, the default index and the mapping (the serving names are the indices it writes). */
  readonly opensearchEnvironment: Record<string, string>;
  /** What happens to the function's log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

/**
 * The resync function. A swap restores settings and deletes the old indices, and tombstone removal
 * pages through them in rounds: minutes at most, hence its timeout.
 */
export function createResyncFunction(
  scope: Construct,
  id: string,
  props: ResyncFunctionProps,
): HandlerFunction {
  const fn = new HandlerFunction(scope, id, {
    handlerName: 'resync',
    description: 'ddb2os: starts, drains, swaps in or aborts the resync of a table into new indices',
    timeout: Duration.minutes(15),
    memorySize: 512,
    logRemovalPolicy: props.logRemovalPolicy,
    environment: {
      ...props.opensearchEnvironment,
      [ENV.TABLE_NAME]: props.tableName,
      [ENV.PROGRESS_TABLE]: props.progressTable.tableName,
    },
  });
  // The resync state: read it (consistently), put it conditionally, move its phase, delete it.
  props.progressTable.grant(
    fn,
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
  );
  return fn;
}
