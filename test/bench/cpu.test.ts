/**
 * The benchmark reads the CPU of engines it did not start by finding the
 * process that listens on their port.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  canPin,
  engineProcessGroups,
  groupCpuSeconds,
  groupRunQueueSeconds,
  listenerProcessGroup,
  runQueueMeter,
} from '../../bench/cpu';
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

  it("does not take an engine's group when it is the benchmark's own, or the other engine's: their CPU would mix", async () => {
    // Prepare: a listener in this very process
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const own = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

    try {
      // Act
      const withOwn = engineProcessGroups(own, opensearchUrl());
      const same = engineProcessGroups(opensearchUrl(), opensearchUrl());

      // Assess: the listener was found, and left out
      expect(listenerProcessGroup(own)).toBe(ownProcessGroup());
      expect(withOwn.dynamodb).toBeUndefined();
      expect(same).toEqual({ dynamodb: undefined, opensearch: undefined });
    } finally {
      server.close();
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

describe.runIf(process.platform === 'linux' && canPin())('groupRunQueueSeconds', () => {
  it('counts the time a process group waited while another process held its CPU', async () => {
    // Prepare: two processes that only compute, both on CPU 0; each is a process group of its own.
    const burn = 'const end = Date.now() + 1500; while (Date.now() < end);';
    const burners = [0, 1].map(() =>
      spawn('taskset', ['-c', '0', process.execPath, '-e', burn], { detached: true, stdio: 'ignore' }),
    );
    const [first] = burners;
    await once(first as NonNullable<typeof first>, 'spawn');
    const group = first?.pid as number;

    // Act: read the first one's wait once both have run for a while.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const waited = groupRunQueueSeconds(group);
    const ran = groupCpuSeconds(group);
    await Promise.all(burners.map((burner) => once(burner, 'exit')));

    // Assess: sharing one CPU, it waited for about as long as it ran (anything else on CPU 0 adds to the wait).
    expect(ran).toBeGreaterThan(0);
    expect(waited).toBeGreaterThan(0.2);
    expect(groupRunQueueSeconds(2 ** 22 + 1)).toBe(0); // no such group
  }, 20_000);

  it('never measures a phase as a negative wait when a thread that waited ends during it', async () => {
    // Prepare: one process group (the shell's) of two processes on CPU 0; the second waits a lot
    // before the phase and ends during it, taking its count with it.
    const burn = (ms: number) =>
      `taskset -c 0 ${process.execPath} -e 'const end = Date.now() + ${ms}; while (Date.now() < end);'`;
    const group = spawn('sh', ['-c', `${burn(2000)} & ${burn(1000)} & wait`], {
      detached: true,
      stdio: 'ignore',
    });
    await once(group, 'spawn');
    await new Promise((resolve) => setTimeout(resolve, 900));
    const before = groupRunQueueSeconds(group.pid as number);

    // Act: a phase from 0.9 s to 1.6 s, which the shorter one does not outlive.
    const meter = runQueueMeter({ dynamodb: group.pid as number });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const phase = meter();
    const after = groupRunQueueSeconds(group.pid as number);
    await once(group, 'exit');

    // Assess: the group's sum fell (the ended thread's wait is gone from it); the meter, thread by thread, did not.
    expect(before).toBeGreaterThan(0.1);
    expect(after).toBeLessThan(before);
    expect(phase.dynamodb).toBeGreaterThanOrEqual(0);
  }, 20_000);
});
