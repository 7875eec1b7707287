/**
 * The benchmark reads the CPU of engines it did not start by finding the
 * process that listens on their port.
 */

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { groupCpuSeconds, listenerProcessGroup } from '../../bench/cpu';
import { dynamodbEndpoint, opensearchUrl } from '../support/engines';

/** This process's group, from /proc (field 5 of stat). */
function ownProcessGroup(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe.runIf(process.platform === 'linux')('listenerProcessGroup', () => {
  it('finds the process group of the process listening on a URL of this machine', async () => {
    // Prepare
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };

    try {
      // Act
      const group = listenerProcessGroup(`http://127.0.0.1:${port}`);

      // Assess
      expect(group).toBe(ownProcessGroup());
    } finally {
      server.close();
    }
  });

  it("finds the suite's engines, and their CPU is counted", () => {
    for (const url of [dynamodbEndpoint(), opensearchUrl()]) {
      const group = listenerProcessGroup(url);
      expect(group, url).toBeGreaterThan(0);
      // A JVM that has answered requests has spent CPU.
      expect(groupCpuSeconds(group as number), url).toBeGreaterThan(0);
    }
  });

  it('says nothing for a port no one listens on, or another host', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    server.close();
    await once(server, 'close');

    expect(listenerProcessGroup(`http://127.0.0.1:${port}`)).toBeUndefined();
    expect(listenerProcessGroup('https://search-orders.eu-west-1.es.amazonaws.com')).toBeUndefined();
    expect(listenerProcessGroup('not a url')).toBeUndefined();
  });
});
