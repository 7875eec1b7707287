/**
 * The dead-letter place: every item that cannot become a document, or that
 * OpenSearch rejects for good, is written here with its key and the reason, so
 * nothing is dropped silently. On AWS it is an S3 bucket (an item can be up to
 * 400 KB, more than a queue message carries comfortably); locally a folder.
 * Both use one JSON Lines object per batch of failures:
 * `dead-letter/<runId>/<segment or "stream">/<timestamp>-<random>.jsonl`.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BUCKET_PREFIXES } from '../contract/bucket';
import { binaryAsBase64 } from '../table/sdk-json';
import type { DeadLetterRecord } from '../table/types';

export interface DeadLetterSink {
  /** Where the records go, for messages a person reads (`s3://bucket/prefix`, a folder path). */
  readonly location: string;
  /** Stores the records durably before it resolves. An empty list is a no-op. */
  put(records: DeadLetterRecord[]): Promise<void>;
}

function objectKey(records: DeadLetterRecord[]): string {
  const first = records[0] as DeadLetterRecord;
  const part = first.segment === undefined ? 'stream' : `segment-${first.segment}`;
  const stamp = new Date().toISOString().replaceAll(':', '-');
  return `${BUCKET_PREFIXES.deadLetters}${first.runId}/${part}/${stamp}-${randomUUID().slice(0, 8)}.jsonl`;
}

function toJsonLines(records: DeadLetterRecord[]): string {
  return `${records.map((record) => JSON.stringify(record, binaryAsBase64)).join('\n')}\n`;
}

export class S3DeadLetterSink implements DeadLetterSink {
  readonly location: string;
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {
    this.location = `s3://${bucket}/${BUCKET_PREFIXES.deadLetters}`;
  }

  async put(records: DeadLetterRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: objectKey(records),
        Body: toJsonLines(records),
        ContentType: 'application/x-ndjson',
      }),
    );
  }
}

export class DirectoryDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  constructor(private readonly directory: string) {
    this.location = directory;
  }

  async put(records: DeadLetterRecord[]): Promise<void> {
    if (records.length === 0) return;
    const path = join(this.directory, objectKey(records));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, toJsonLines(records));
  }

  /** Every record written under this folder for a run (for the CLI, verify and tests). */
  async read(runId: string): Promise<DeadLetterRecord[]> {
    const root = join(this.directory, BUCKET_PREFIXES.deadLetters, runId);
    const files = await readdir(root, { recursive: true }).catch(() => [] as string[]);
    const records: DeadLetterRecord[] = [];
    for (const file of files.filter((name) => name.endsWith('.jsonl')).sort()) {
      const text = await readFile(join(root, file), 'utf8');
      for (const line of text.split('\n'))
        if (line.trim()) records.push(JSON.parse(line) as DeadLetterRecord);
    }
    return records;
  }
}
