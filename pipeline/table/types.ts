import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/** A DynamoDB item in its wire form: numbers stay exact strings. */
export type Item = Record<string, AttributeValue>;

/** The table's key schema, as the mapping needs it. */
export interface KeySchema {
  partitionKey: string;
  sortKey?: string;
}

/** The message that the Distributed Map item sends to SQS for one segment. */
export interface SegmentMessage {
  /** Step Functions task token of the Map item (absent in local runs). */
  taskToken?: string;
  /** One backfill run: checkpoints are keyed by it, so a redrive reuses them. */
  runId: string;
  table: string;
  index: string;
  segment: number;
  totalSegments: number;
  /** Optional read budget for this segment, in read capacity units per second. */
  readUnitsPerSecond?: number;
  /** How many times this segment was handed on to a fresh invocation (0 first). */
  continuation?: number;
  /**
   * A resync's serving name → the index it fills instead (pipeline/resync/); absent or empty in a
   * backfill. Continuations carry it on, as they carry the rest of the message.
   */
  targets?: Record<string, string>;
}

/** Counts that a segment (and a whole run) reports. They add up: scanned = created + alreadyPresent + failed + skipped. */
export interface SegmentCounts {
  /** Items read from the table. */
  scanned: number;
  /** Documents created. */
  created: number;
  /** Documents that already existed (bulk create answered 409). */
  alreadyPresent: number;
  /** Items that went to the dead-letter place. */
  failed: number;
  /** Items that the mapping routed nowhere (no matching prefix, or a transform that returned nothing). */
  skipped: number;
  /** Bulk items retried after 429/5xx. */
  retried: number;
}

/** What a finished segment returns through SendTaskSuccess. */
export interface SegmentResult extends SegmentCounts {
  segment: number;
  totalSegments: number;
  pages: number;
  durationMs: number;
}

export type SegmentStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';

/** A dead-letter record: enough to find the item again and to see why it failed. */
export interface DeadLetterRecord {
  runId: string;
  segment?: number;
  table: string;
  index?: string;
  /** The item's key attributes (wire form). */
  key: Item;
  /** Document id, when the mapping got that far. */
  id?: string;
  reason: string;
  /** OpenSearch error type, e.g. mapper_parsing_exception, or the error class name. */
  errorType: string;
  at: string;
}

export function emptyCounts(): SegmentCounts {
  return { scanned: 0, created: 0, alreadyPresent: 0, failed: 0, skipped: 0, retried: 0 };
}

export function addCounts(a: SegmentCounts, b: SegmentCounts): SegmentCounts {
  return {
    scanned: a.scanned + b.scanned,
    created: a.created + b.created,
    alreadyPresent: a.alreadyPresent + b.alreadyPresent,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
    retried: a.retried + b.retried,
  };
}
