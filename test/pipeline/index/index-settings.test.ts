import { describe, expect, it } from 'vitest';
import { prepareIndexForBackfill, restoreIndexAfterBackfill } from '../../../pipeline/index/index-settings';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import { uniqueName, useEngines } from '../../support/engines';
import { closedPort } from '../../support/opensearch-proxy';

const engines = useEngines();
const { opensearch } = engines;

function newIndex(): string {
  const index = engines.indexName('settings');
  return index;
}

async function settingsOf(index: string): Promise<Record<string, unknown>> {
  const { body } = await opensearch.indices.getSettings({ index });
  return (
    (body as Record<string, { settings: { index: Record<string, unknown> } }>)[index]?.settings.index ?? {}
  );
}

describe('index settings around a backfill', () => {
  it('creates missing indices for a bulk load and restores the recorded settings afterwards, twice without harm', async () => {
    // Prepare
    const main = newIndex();
    const routed = newIndex();

    // Act
    const prepared = await prepareIndexForBackfill(opensearch, [main, routed, main], {
      mappingBody: { properties: { price: { type: 'long' } } },
      after: { number_of_replicas: 0, refresh_interval: '2s' },
    });
    const during = await settingsOf(main);
    const restored = await restoreIndexAfterBackfill(opensearch, [main, routed]);
    const again = await restoreIndexAfterBackfill(opensearch, [main, routed]);
    const after = await settingsOf(main);

    // Assess
    expect(prepared).toEqual([
      { index: main, action: 'created' },
      { index: routed, action: 'created' },
    ]);
    expect(during).toMatchObject({ refresh_interval: '-1', number_of_replicas: '0' });
    expect((during.mapping as { depth: { limit: string } }).depth.limit).toBe('64');
    expect(restored.map((entry) => entry.action)).toEqual(['restored', 'restored']);
    expect(again.map((entry) => entry.action)).toEqual(['untouched', 'untouched']);
    expect(after).toMatchObject({ refresh_interval: '2s', number_of_replicas: '0' });
    const { body } = await opensearch.indices.getMapping({ index: main });
    const mappings = (
      body as Record<string, { mappings: { properties: unknown; _meta: { ddb2os: unknown } } }>
    )[main]?.mappings;
    expect(mappings?.properties).toEqual({ price: { type: 'long' } });
    expect(mappings?._meta.ddb2os).toMatchObject({ state: 'READY' });
  });

  it('creates an index that accepts any item: mixed integer and decimal numbers, date-like strings', async () => {
    // Prepare
    const index = newIndex();
    await prepareIndexForBackfill(opensearch, index);

    // Act: a number set [1000, 0.1] and a later decimal in a field first seen as an integer
    const first = await opensearch.index({
      index,
      id: 'a',
      body: { ns: [1000, 0.1], qty: 3, when: '2024-01-01' },
    });
    const second = await opensearch.index({ index, id: 'b', body: { ns: [7], qty: 2.5, when: 'soon' } });

    // Assess
    expect([first.body.result, second.body.result]).toEqual(['created', 'created']);
    const { body } = await opensearch.indices.getMapping({ index });
    const properties = (
      body as Record<string, { mappings: { properties: Record<string, { type: string }> } }>
    )[index]?.mappings.properties;
    expect(properties?.ns?.type).toBe('double');
    expect(properties?.qty?.type).toBe('double');
    expect(properties?.when?.type).toBe('text');
  });

  it('leaves an index that already exists exactly as it is', async () => {
    // Prepare
    const index = newIndex();
    await opensearch.indices.create({ index, body: { settings: { index: { refresh_interval: '30s' } } } });

    // Act
    const prepared = await prepareIndexForBackfill(opensearch, index);
    const restored = await restoreIndexAfterBackfill(opensearch, index);

    // Assess
    expect(prepared).toEqual([{ index, action: 'existing' }]);
    expect(restored).toEqual([{ index, action: 'untouched' }]);
    expect(await settingsOf(index)).toMatchObject({ refresh_interval: '30s' });
  });

  it('reports an index that was never created as missing', async () => {
    const index = uniqueName('never');
    expect(await restoreIndexAfterBackfill(opensearch, index)).toEqual([{ index, action: 'missing' }]);
  });

  it('names the endpoint when OpenSearch cannot be reached', async () => {
    const port = await closedPort();
    const offline = createOpenSearchClient({ endpoint: `http://127.0.0.1:${port}` });
    await expect(prepareIndexForBackfill(offline, 'x')).rejects.toMatchObject({
      name: 'SinkUnavailableError',
      message: expect.stringContaining(
        `OpenSearch at http://127.0.0.1:${port} could not be reached to set up index x`,
      ),
    });
  });
});
