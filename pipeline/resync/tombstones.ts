/**
 * Delete markers of a resync. While the backfill fills a new index, the
 * updater writes an item's delete there as a tombstone document instead of
 * a delete: the backfill's `create` of an older read of that item then finds
 * a document and leaves it (counted as already present), so a deleted item
 * cannot come back. The tombstones are removed before the new index is
 * served (docs/guarantees.md, "Resync").
 *
 * A tombstone names its run: `{"_ddb2os_tombstone": "<runId>"}`. An item
 * would have to hold exactly that attribute and value to be mistaken for
 * one. The resync index maps the field as a keyword explicitly, so an index
 * definition with `"dynamic": "strict"` accepts tombstones too.
 */
import type { Client } from '@opensearch-project/opensearch';
import { SinkUnavailableError } from '../errors';

export const TOMBSTONE_FIELD = '_ddb2os_tombstone';

/** The mapping a resync index gets besides its definition's, so that tombstones always fit. */
export const TOMBSTONE_MAPPING_PROPERTIES = { [TOMBSTONE_FIELD]: { type: 'keyword' } } as const;

/** The tombstone document of `runId`, as a bulk source line. */
export function tombstoneLine(runId: string): string {
  return JSON.stringify({ [TOMBSTONE_FIELD]: runId });
}

function tombstoneQuery(runId: string) {
  return { term: { [TOMBSTONE_FIELD]: runId } };
}

/** How many of `runId`'s tombstones `index` holds (after a refresh). */
export async function countTombstones(client: Client, index: string, runId: string): Promise<number> {
  return sinkCall(`count the resync tombstones in ${index}`, async () => {
    await client.indices.refresh({ index });
    const { body } = await client.count({ index, body: { query: tombstoneQuery(runId) } });
    return (body as { count: number }).count;
  });
}

/** Tombstones read and deleted per round. */
const REMOVAL_PAGE = 1_000;

/**
 * Deletes `runId`'s tombstones from `index` and returns how many it deleted and how many are left
 * (0 unless a writer that saw the FILLING phase is still writing). Each delete names the tombstone's
 * sequence number (`if_seq_no`), so a tombstone that the item's new document replaced meanwhile is
 * left alone: the document stays. Search and bulk delete rather than `_delete_by_query`, which the
 * OpenSearch distribution on Maven Central lacks (it is in the reindex module).
 */
export async function removeTombstones(
  client: Client,
  index: string,
  runId: string,
): Promise<{ deleted: number; remaining: number }> {
  let deleted = 0;
  for (;;) {
    const hits = await sinkCall(`find the resync tombstones in ${index}`, async () => {
      await client.indices.refresh({ index });
      const { body } = await client.search({
        index,
        body: { query: tombstoneQuery(runId), size: REMOVAL_PAGE, seq_no_primary_term: true, _source: false },
      });
      return body.hits.hits as { _id: string; _seq_no: number; _primary_term: number }[];
    });
    if (hits.length === 0) break;
    const lines = hits.map(
      (hit) =>
        `${JSON.stringify({ delete: { _index: index, _id: hit._id, if_seq_no: hit._seq_no, if_primary_term: hit._primary_term } })}\n`,
    );
    const items = await sinkCall(`delete the resync tombstones in ${index}`, async () => {
      const { body } = await client.bulk({ body: lines.join('') } as never);
      return (body as { items: { delete: { status: number; error?: { reason?: string } } }[] }).items;
    });
    let progressed = 0;
    for (const { delete: item } of items) {
      if (item.status === 200) deleted += 1;
      // 409: the item's document replaced the tombstone; 404: someone deleted it already.
      if (item.status === 200 || item.status === 409 || item.status === 404) progressed += 1;
    }
    if (progressed === 0) {
      const reason = items.find(({ delete: item }) => item.error)?.delete.error?.reason ?? 'no reason given';
      throw new SinkUnavailableError(
        `OpenSearch refused to delete the resync tombstones in ${index}: ${reason}`,
      );
    }
  }
  return { deleted, remaining: await countTombstones(client, index, runId) };
}

async function sinkCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new SinkUnavailableError(`OpenSearch could not ${what}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
