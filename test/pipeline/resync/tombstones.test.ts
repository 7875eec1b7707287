import { describe, expect, it } from 'vitest';
import {
  countTombstones,
  removeTombstones,
  TOMBSTONE_MAPPING_PROPERTIES,
  tombstoneLine,
} from '../../../pipeline/resync/tombstones';
import { useEngines } from '../../support/engines';

const engines = useEngines();
const { opensearch } = engines;

async function strictIndex(): Promise<string> {
  const index = engines.indexName('tombstones');
  await opensearch.indices.create({
    index,
    body: {
      mappings: {
        dynamic: 'strict',
        properties: { name: { type: 'keyword' }, ...TOMBSTONE_MAPPING_PROPERTIES },
      },
    },
  });
  return index;
}

async function ids(index: string): Promise<string[]> {
  await opensearch.indices.refresh({ index });
  const { body } = await opensearch.search({ index, body: { size: 100, query: { match_all: {} } } });
  return (body.hits.hits as { _id: string }[]).map((hit) => hit._id).sort();
}

describe('resync tombstones', () => {
  it('keeps a create of an older read from bringing a deleted item back, then leaves no trace', async () => {
    // Prepare: a strict index (a user's definition) accepts the tombstone
    const index = await strictIndex();
    await opensearch.index({ index, id: 'gone', body: tombstoneLine('run-1') as never });
    await opensearch.index({ index, id: 'kept', body: { name: 'k' } });

    // Act: the backfill's create of its older read of 'gone'
    const create = await opensearch.create({ index, id: 'gone', body: { name: 'stale' } }, { ignore: [409] });
    const before = await countTombstones(opensearch, index, 'run-1');
    const removed = await removeTombstones(opensearch, index, 'run-1');

    // Assess
    expect(create.statusCode).toBe(409);
    expect(before).toBe(1);
    expect(removed).toEqual({ deleted: 1, remaining: 0 });
    expect(await ids(index)).toEqual(['kept']);
  });

  it("removes only its own run's tombstones, and not a document that replaced one", async () => {
    // Prepare
    const index = await strictIndex();
    await opensearch.index({ index, id: 'a', body: tombstoneLine('run-1') as never });
    await opensearch.index({ index, id: 'b', body: tombstoneLine('run-0') as never });
    await opensearch.index({ index, id: 'c', body: tombstoneLine('run-1') as never });
    await opensearch.index({ index, id: 'c', body: { name: 're-created' } });

    // Act
    const removed = await removeTombstones(opensearch, index, 'run-1');

    // Assess
    expect(removed).toEqual({ deleted: 1, remaining: 0 });
    expect(await ids(index)).toEqual(['b', 'c']);
    const { body } = await opensearch.get({ index, id: 'c' });
    expect(body._source).toEqual({ name: 're-created' });
  });
});
