import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../../../pipeline/errors';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import { prepareSegmentWork } from '../../../pipeline/scan/segment-message';

const mapping: MappingConfig = {
  index: 'orders',
  routes: [
    { prefix: 'order#', index: 'orders' },
    { prefix: 'audit#', index: 'audit' },
  ],
};
const deployment = {
  table: 'orders-table',
  mapping,
  keySchema: async () => ({ partitionKey: 'pk' }),
};
const message = { runId: 'resync-1', table: 'orders-table', index: 'orders', segment: 0, totalSegments: 2 };

describe('prepareSegmentWork', () => {
  it("writes a resync's segment to the new index of each serving name, routes included", async () => {
    const work = await prepareSegmentWork(
      { ...message, targets: { orders: 'orders-resync-1', audit: 'audit-resync-1' } },
      deployment,
    );

    expect(work.mapping.index).toBe('orders-resync-1');
    expect(work.mapping.routes?.map((route) => route.index)).toEqual(['orders-resync-1', 'audit-resync-1']);
    expect(work.message.targets).toEqual({ orders: 'orders-resync-1', audit: 'audit-resync-1' });
  });

  it("writes a backfill's segment (no targets, or none) to the serving names", async () => {
    for (const targets of [undefined, {}]) {
      const work = await prepareSegmentWork({ ...message, ...(targets ? { targets } : {}) }, deployment);

      expect(work.mapping.index).toBe('orders');
      expect(work.mapping.routes?.map((route) => route.index)).toEqual(['orders', 'audit']);
    }
  });

  it.each([
    [['orders-resync-1'], /^the segment message's targets must be an object, not \["orders-resync-1"\]$/],
    [
      { orders: 'Orders' },
      /^the segment message's target of orders, "Orders", is not a valid index name: it /,
    ],
    [
      { orders: 7 },
      /^the segment message's target of orders, 7, is not a valid index name: it is not a string$/,
    ],
  ])('refuses targets %j, naming them', async (targets, text) => {
    const error = await prepareSegmentWork({ ...message, targets }, deployment).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as Error).message).toMatch(text);
  });
});
