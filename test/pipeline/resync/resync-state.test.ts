import { describe, expect, it } from 'vitest';
import { ensureProgressTable } from '../../../pipeline/progress/checkpoint';
import { drainResync, endResync, readResyncState, startResync } from '../../../pipeline/resync/resync-state';
import { useEngines } from '../../support/engines';

const engines = useEngines();
const { dynamodb } = engines;

async function progressTable(): Promise<string> {
  const name = engines.tableName('resync-progress');
  await ensureProgressTable(dynamodb, name);
  return name;
}

describe('the resync state in the progress table', () => {
  it('starts, resumes the same run, refuses another run by name, drains and ends', async () => {
    // Prepare
    const progress = await progressTable();
    const targets = { orders: 'orders-run-1' };

    // Act
    const started = await startResync(dynamodb, progress, 'Orders', 'run-1', targets);
    const resumed = await startResync(dynamodb, progress, 'Orders', 'run-1', { orders: 'ignored' });
    const other = startResync(dynamodb, progress, 'Orders', 'run-2', { orders: 'orders-run-2' });
    await expect(other).rejects.toThrow(
      /^table Orders is already being resynced by run run-1 \(since .+\): let it finish, or abort it with ddb2os resync --abort$/,
    );
    await drainResync(dynamodb, progress, 'Orders', 'run-1');
    await drainResync(dynamodb, progress, 'Orders', 'run-1');
    const draining = await readResyncState(dynamodb, progress, 'Orders');
    await expect(endResync(dynamodb, progress, 'Orders', 'run-2')).rejects.toThrow(/another run than run-2/);
    await endResync(dynamodb, progress, 'Orders', 'run-1');

    // Assess
    expect(started).toMatchObject({ runId: 'run-1', phase: 'FILLING', targets });
    expect(resumed).toEqual(started);
    expect(draining).toMatchObject({ runId: 'run-1', phase: 'DRAINING', targets });
    expect(await readResyncState(dynamodb, progress, 'Orders')).toBeUndefined();
    expect(await readResyncState(dynamodb, progress, 'Other')).toBeUndefined();
  });

  it('will not drain a resync that does not exist', async () => {
    const progress = await progressTable();
    await expect(drainResync(dynamodb, progress, 'Orders', 'run-9')).rejects.toThrow(
      'table Orders has no resync of run run-9 to finish',
    );
  });
});
