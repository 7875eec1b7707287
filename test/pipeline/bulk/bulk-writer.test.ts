import type { Client } from '@opensearch-project/opensearch';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BulkDocument,
  type BulkOutcome,
  BulkWriter,
  type BulkWriterOptions,
  bulkCreateLine,
  bulkLine,
  isDynamicMappingRace,
} from '../../../pipeline/bulk/bulk-writer';
import { prepareIndexForBackfill } from '../../../pipeline/index/index-settings';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import { indexCount } from '../../support/backfill-fixtures';
import { opensearchUrl, useEngines } from '../../support/engines';
import { closedPort, type FaultyProxy, startFaultyProxy } from '../../support/opensearch-proxy';

const engines = useEngines();
const { opensearch } = engines;
const proxies: FaultyProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

function newIndex(): string {
  const index = engines.indexName('bulk');
  return index;
}

function documents(index: string, count: number, size = 400, prefix = 'doc'): BulkDocument<number>[] {
  return Array.from({ length: count }, (_, i) => ({
    ...bulkCreateLine(index, `${prefix}-${i}`, JSON.stringify({ n: i, text: 'x'.repeat(size) })),
    ticket: i,
  }));
}

/** Writes the documents and returns each one's outcome by ticket. */
async function write(
  client: Client,
  docs: BulkDocument<number>[],
  options: Omit<BulkWriterOptions<number>, 'onOutcome'> = {},
): Promise<{ outcomes: Map<number, BulkOutcome>; writer: BulkWriter<number> }> {
  const outcomes = new Map<number, BulkOutcome>();
  const writer = new BulkWriter<number>(client, {
    baseDelayMs: 5,
    maxDelayMs: 50,
    ...options,
    onOutcome: (doc, outcome) => {
      expect(outcomes.has(doc.ticket)).toBe(false);
      outcomes.set(doc.ticket, outcome);
    },
  });
  for (const doc of docs) await writer.add(doc);
  await writer.drain();
  return { outcomes, writer };
}

function statuses(outcomes: Map<number, BulkOutcome>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes.values()) counts[outcome.status] = (counts[outcome.status] ?? 0) + 1;
  return counts;
}

async function proxy(
  faults: Parameters<typeof startFaultyProxy>[1],
): Promise<{ proxy: FaultyProxy; client: Client }> {
  const started = await startFaultyProxy(opensearchUrl(), faults);
  proxies.push(started);
  // maxRetries 0 (as in production): every retry is the writer's.
  return { proxy: started, client: createOpenSearchClient({ endpoint: started.url }) };
}

describe('BulkWriter', () => {
  it('keeps every request within the byte bound and the document bound', async () => {
    // Prepare
    const index = newIndex();
    const { proxy: byBytes, client: bytesClient } = await proxy({});
    const { proxy: byCount, client: countClient } = await proxy({});

    // Act
    const bytes = await write(bytesClient, documents(index, 100, 400, 'b'), {
      maxBytes: 4_000,
      concurrency: 1,
    });
    const count = await write(countClient, documents(index, 100, 400, 'c'), { maxDocs: 7, concurrency: 1 });

    // Assess
    expect(statuses(bytes.outcomes)).toEqual({ created: 100 });
    expect(statuses(count.outcomes)).toEqual({ created: 100 });
    expect(byBytes.stats.bodies.every((body) => body.bytes <= 4_000)).toBe(true);
    expect(byBytes.stats.bodies.length).toBeGreaterThanOrEqual(Math.ceil((100 * 470) / 4_000));
    expect(byCount.stats.bodies.map((body) => body.actions)).toEqual([...Array(14).fill(7), 2]);
    expect(await indexCount(opensearch, index)).toBe(200);
  });

  it('signs (SigV4, es) the exact bytes it sends: the body hash in the request matches the body, non-ASCII included', async () => {
    // Prepare: static credentials for the default chain; the proxy passes the request on to OpenSearch.
    const index = newIndex();
    const saved = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      const started = await startFaultyProxy(opensearchUrl(), {});
      proxies.push(started);
      const signed = createOpenSearchClient({ endpoint: started.url, signing: 'es', region: 'eu-west-1' });
      const docs = Array.from({ length: 30 }, (_, i) => ({
        ...bulkCreateLine(index, `signed-${i}`, JSON.stringify({ n: i, text: `é 漢字 😀 ${i}` })),
        ticket: i,
      }));

      // Act
      const { outcomes } = await write(signed, docs, { maxDocs: 10, concurrency: 1 });

      // Assess
      expect(statuses(outcomes)).toEqual({ created: 30 });
      expect(started.stats.bodies).toHaveLength(3);
      for (const body of started.stats.bodies) {
        expect(body.contentSha256).toBe(body.sha256);
        expect(body.authorization).toMatch(
          /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/es\/aws4_request, SignedHeaders=.*x-amz-content-sha256.*, Signature=[0-9a-f]{64}$/,
        );
      }
      const stored = await opensearch.get({ index, id: 'signed-7' });
      expect(stored.body._source).toEqual({ n: 7, text: 'é 漢字 😀 7' });
    } finally {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });

  it('counts a document that already exists (409) as present and leaves it as it was', async () => {
    // Prepare
    const index = newIndex();
    await write(opensearch, documents(index, 20));
    const changed = documents(index, 20, 10);

    // Act
    const { outcomes } = await write(opensearch, changed);

    // Assess
    expect(statuses(outcomes)).toEqual({ present: 20 });
    const { body } = await opensearch.get({ index, id: 'doc-3' });
    expect((body._source as { text: string }).text).toHaveLength(400);
  });

  it('writes an index or delete held to a version only while the document has it; reports the versions it wrote', async () => {
    // Prepare: two documents at their first version; one is then overwritten.
    const index = newIndex();
    await write(opensearch, documents(index, 2));
    const { body: first } = await opensearch.get({ index, id: 'doc-0' });
    const read = { seqNo: first._seq_no!, primaryTerm: first._primary_term! };
    await opensearch.index({ index, id: 'doc-1', body: { n: 7 }, refresh: true });
    const { body: second } = await opensearch.get({ index, id: 'doc-1' });
    const outcomes = new Map<number, { outcome: BulkOutcome; written?: { seqNo: number } }>();
    const writer = new BulkWriter<number>(opensearch, {
      reportVersions: true,
      onOutcome: (doc, outcome, _retries, written) => outcomes.set(doc.ticket, { outcome, written }),
    });

    // Act: doc-0 at the version read; doc-1 at a version it no longer has (index, then delete).
    const failure = await writer.writeAll([0, 1, 2], (ticket) =>
      ticket === 0
        ? bulkLine('index', index, 'doc-0', '{"n":5}', read)
        : ticket === 1
          ? bulkLine('index', index, 'doc-1', '{"n":1}', read)
          : bulkLine('delete', index, 'doc-1', undefined, read),
    );

    // Assess
    expect(failure).toBeUndefined();
    expect(outcomes.get(0)).toEqual({
      outcome: { status: 'indexed' },
      written: { seqNo: expect.any(Number), primaryTerm: read.primaryTerm },
    });
    expect(outcomes.get(0)!.written!.seqNo).toBeGreaterThan(second._seq_no!);
    expect(outcomes.get(1)!.outcome).toEqual({ status: 'conflict' });
    expect(outcomes.get(2)!.outcome).toEqual({ status: 'conflict' });
    expect((await opensearch.get({ index, id: 'doc-0' })).body._source).toEqual({ n: 5 });
    expect((await opensearch.get({ index, id: 'doc-1' })).body._source).toEqual({ n: 7 });
  });

  it('retries documents answered 429 and a request answered 503 until every document is created', async () => {
    // Prepare
    const index = newIndex();
    const { proxy: busy, client } = await proxy({ unavailableFirst: 1, rejectEvery: 3 });

    // Act
    const { outcomes, writer } = await write(client, documents(index, 300), { maxDocs: 50, concurrency: 2 });

    // Assess
    expect(statuses(outcomes)).toEqual({ created: 300 });
    expect(busy.stats.unavailable).toBe(1);
    expect(busy.stats.rejected).toBeGreaterThanOrEqual(90);
    expect(writer.retried).toBe(busy.stats.rejected + 50);
    expect(busy.stats.maxInFlight).toBeLessThanOrEqual(2);
    expect(await indexCount(opensearch, index)).toBe(300);
    // A resent document is resent with its own bytes (a retry body is cut from the first body).
    const { body } = await opensearch.search({ index, body: { size: 300, query: { match_all: {} } } });
    const stored = (body.hits.hits as { _id: string; _source: { n: number; text: string } }[]).map((hit) => [
      hit._id,
      hit._source.n,
      hit._source.text.length,
    ]);
    expect(stored.sort((a, b) => (a[1] as number) - (b[1] as number))).toEqual(
      Array.from({ length: 300 }, (_, i) => [`doc-${i}`, i, 400]),
    );
  });

  it('splits a request answered 413, and fails only the one document that is too large on its own', async () => {
    // Prepare
    const index = newIndex();
    const { proxy: strict, client } = await proxy({ maxBodyBytes: 3_000 });
    const docs = documents(index, 40);
    docs.push({ ...bulkCreateLine(index, 'huge', JSON.stringify({ text: 'y'.repeat(5_000) })), ticket: 40 });

    // Act
    const { outcomes } = await write(client, docs);

    // Assess
    expect(statuses(outcomes)).toEqual({ created: 40, failed: 1 });
    expect(outcomes.get(40)).toMatchObject({
      status: 'failed',
      errorType: 'request_entity_too_large',
      httpStatus: 413,
    });
    expect(strict.stats.tooLarge).toBeGreaterThan(1);
    expect(await indexCount(opensearch, index)).toBe(40);
  });

  it('reports a document OpenSearch rejects for good with its error type and reason', async () => {
    // Prepare
    const index = newIndex();
    await opensearch.indices.create({ index, body: { mappings: { properties: { n: { type: 'long' } } } } });
    const bad = { ...bulkCreateLine(index, 'bad', JSON.stringify({ n: 'eleven' })), ticket: 0 };
    const good = { ...bulkCreateLine(index, 'good', JSON.stringify({ n: 11 })), ticket: 1 };

    // Act
    const { outcomes } = await write(opensearch, [bad, good]);

    // Assess
    expect(outcomes.get(1)).toEqual({ status: 'created' });
    expect(outcomes.get(0)).toMatchObject({
      status: 'failed',
      errorType: 'mapper_parsing_exception',
      httpStatus: 400,
    });
    // A field's type that does not fit reads as one sentence naming the field and both types.
    expect(outcomes.get(0)).toMatchObject({
      reason: expect.stringMatching(
        /^field n is a long field in the index mapping and a string in this item \(OpenSearch: failed to parse field \[n\]/,
      ),
      conflict: { field: 'n', indexType: 'long', itemType: 'a string' },
    });
  });

  it('retries a write-blocked index (a cluster block) as the sink refusing, not the documents: no document is failed', async () => {
    // Prepare
    const index = newIndex();
    await opensearch.indices.create({ index, body: { settings: { 'index.blocks.write': true } } });
    const reported: BulkOutcome[] = [];
    const writer = new BulkWriter<number>(opensearch, {
      maxAttempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 5,
      onOutcome: (_doc, outcome) => reported.push(outcome),
    });

    // Act
    for (const doc of documents(index, 3)) await writer.add(doc);
    const drained = writer.drain();

    // Assess
    await expect(drained).rejects.toMatchObject({
      name: 'SinkUnavailableError',
      message: expect.stringMatching(
        /kept rejecting 3 documents \(403 cluster_block_exception\) after 2 attempts$/,
      ),
    });
    expect(reported).toEqual([]);
  });

  it('fails with SinkUnavailableError naming the endpoint when OpenSearch cannot be reached', async () => {
    // Prepare
    const port = await closedPort();
    const client = createOpenSearchClient({ endpoint: `http://127.0.0.1:${port}` });
    const reported: BulkOutcome[] = [];
    const writer = new BulkWriter<number>(client, {
      maxAttempts: 3,
      baseDelayMs: 1,
      maxDelayMs: 5,
      onOutcome: (_doc, outcome) => reported.push(outcome),
    });

    // Act
    for (const doc of documents('unreachable', 5)) await writer.add(doc);
    const drained = writer.drain();

    // Assess
    await expect(drained).rejects.toMatchObject({
      name: 'SinkUnavailableError',
      message: expect.stringMatching(
        new RegExp(
          `^OpenSearch at http://127\\.0\\.0\\.1:${port} could not take a bulk request of 5 documents after 3 attempts`,
        ),
      ),
    });
    expect(reported).toEqual([]);
    expect(() => writer.add(documents('unreachable', 1)[0] as BulkDocument<number>)).toThrow(/127\.0\.0\.1/);
  });

  it('retries a document that lost a dynamic-mapping race instead of dead-lettering it', async () => {
    // OpenSearch's words when two requests add one new field with two types at once.
    const race = {
      type: 'illegal_argument_exception',
      reason: 'mapper [dimensions.weightKg] cannot be changed from type [text] to [double]',
    };
    expect(isDynamicMappingRace(race)).toBe(true);
    expect(
      isDynamicMappingRace({ type: 'mapper_parsing_exception', reason: 'failed to parse field [w]' }),
    ).toBe(false);

    // Many first bulks at once into a fresh index: `w` is a number in some documents and an exact
    // decimal string (more than 15 significant digits) in others.
    const index = newIndex();
    await prepareIndexForBackfill(opensearch, index);
    const docs = Array.from({ length: 400 }, (_, i) => ({
      ...bulkCreateLine(index, `w-${i}`, JSON.stringify({ w: i % 2 === 0 ? i / 10 : '0.30000000000000004' })),
      ticket: i,
    }));

    const { outcomes } = await write(opensearch, docs, { maxDocs: 5, concurrency: 16 });

    expect(statuses(outcomes)).toEqual({ created: 400 });
    expect(await indexCount(opensearch, index)).toBe(400);
  });
});
