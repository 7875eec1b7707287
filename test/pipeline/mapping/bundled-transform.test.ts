/**
 * loadMappingConfig in a deployed function (transformSource 'bundle'): the
 * hook comes from the module that synth bundled in and registered, never from
 * the path. The registry is per process, so the order of these tests matters.
 */
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../pipeline/errors';
import { registerBundledTransform } from '../../../pipeline/mapping/bundled-transform';
import { loadMappingConfig, mapItem } from '../../../pipeline/mapping/mapping';

const config = JSON.stringify({ transformModule: 'transforms/orders.ts' });
const keySchema = { partitionKey: 'pk' };

describe('loadMappingConfig with the bundled transform', () => {
  it('fails with one sentence when the config names a module and none is bundled into the function', async () => {
    await expect(
      loadMappingConfig(config, { index: 'orders' }, { transformSource: 'bundle' }),
    ).rejects.toThrow(
      new ConfigurationError(
        'mapping.transformModule names transforms/orders.ts, but no transform module is bundled into this ' +
          'function; deploy with the transformModule prop of BackfillWorkflow (or -c transformModule=PATH), ' +
          'which bundles it',
      ),
    );
  });

  it('uses the default export of the bundled module, without importing the path (which does not exist here)', async () => {
    registerBundledTransform('transforms/orders.ts', {
      default: (item: { pk?: { S?: string } }, context: { defaultIndex: string }) => ({
        index: `${context.defaultIndex}-bundled`,
        id: `bundled:${item.pk?.S}`,
        document: { pk: item.pk?.S },
      }),
    });

    const mapping = await loadMappingConfig(config, { index: 'orders' }, { transformSource: 'bundle' });

    expect(mapItem({ pk: { S: 'a' } }, keySchema, mapping)).toEqual([
      { index: 'orders-bundled', id: 'bundled:a', document: { pk: 'a' } },
    ]);
  });

  it('uses the export named transform when there is no default export', async () => {
    registerBundledTransform('transforms/orders.ts', {
      transform: () => ({ index: 'named', id: 'named-1', document: {} }),
    });

    const mapping = await loadMappingConfig(config, { index: 'orders' }, { transformSource: 'bundle' });

    expect(mapItem({ pk: { S: 'a' } }, keySchema, mapping)).toEqual([
      { index: 'named', id: 'named-1', document: {} },
    ]);
  });

  it('fails when the bundled module exports neither a default function nor transform', async () => {
    registerBundledTransform('transforms/orders.ts', { default: 'not a function', other: () => null });

    await expect(
      loadMappingConfig(config, { index: 'orders' }, { transformSource: 'bundle' }),
    ).rejects.toThrow(
      new ConfigurationError(
        'mapping.transformModule transforms/orders.ts exports neither a default function nor a function named transform',
      ),
    );
  });
});
