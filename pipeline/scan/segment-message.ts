/**
 * The rules a segment message meets before its scan starts, the same for
 * the worker Lambda and the local runner: the message is well formed, it
 * names the table this deployment backfills, its index (the workflow
 * input's, or the deployment's default) replaces the mapping's default
 * index, a resync's targets replace the serving names, and the mapping fits
 * the table's key schema. One function, so the
 * index a run prepares is the index its segments write to, wherever they run.
 */
import { SourceTableError } from '../errors';
import { checkMappingForTable, type MappingConfig } from '../mapping/mapping';
import { retargetMapping } from '../resync/resync-targets';
import type { KeySchema, SegmentMessage } from '../table/types';
import { parseSegmentMessage } from './scan-segment';

/** What a segment message is checked against: the deployment that runs it. */
export interface SegmentDeployment {
  /** The table this deployment backfills; a message naming another is refused. Absent: any table. */
  table?: string;
  /** The deployment's mapping; the message's index replaces its `index`. */
  mapping: MappingConfig;
  /** The key schema of the message's table (the worker caches one DescribeTable per table). */
  keySchema(table: string): Promise<KeySchema>;
}

/** A message ready to scan: the message, the mapping it writes with, and its table's key schema. */
export interface SegmentWork {
  message: SegmentMessage;
  mapping: MappingConfig;
  keySchema: KeySchema;
}

/**
 * Checks a segment message (already JSON-parsed) against the deployment.
 * Throws InvalidMessageError for a malformed message, SourceTableError for
 * another table or one that does not exist, ConfigurationError for a mapping
 * that does not fit the table.
 */
export async function prepareSegmentWork(raw: unknown, deployment: SegmentDeployment): Promise<SegmentWork> {
  const message = parseSegmentMessage(raw);
  if (deployment.table !== undefined && message.table !== deployment.table) {
    throw new SourceTableError(
      `this worker backfills table ${deployment.table}, but the message names table ${message.table}`,
    );
  }
  const keySchema = await deployment.keySchema(message.table);
  // A resync's message names the serving index; its targets say which new index each name fills.
  const mapping = retargetMapping<MappingConfig>(
    { ...deployment.mapping, index: message.index },
    message.targets,
  );
  checkMappingForTable(mapping, keySchema);
  return { message, mapping, keySchema };
}
