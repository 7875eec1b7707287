/**
 * The resync's argument (docs/guarantees.md, "Resync") checked on a model of
 * every interleaving: writers change the table, the scan reads each key once
 * and creates its document later, the updater applies the stream in order in
 * batches that read the phase when they start (so a batch may still act on an
 * old phase), and the tombstones are removed once no FILLING batch runs. The
 * writes to the new index go through withResyncWrites, the code the updater
 * runs. After the stream is drained, the new index must equal the table. The
 * same model without tombstones must fail: the race they close is real.
 * Races on the real engines: races.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ResyncState } from '../../../pipeline/resync/resync-state';
import { type DocumentWrite, withResyncWrites } from '../../../pipeline/resync/resync-targets';
import { TOMBSTONE_FIELD } from '../../../pipeline/resync/tombstones';

const KEYS = ['a', 'b', 'c'];
type Phase = 'none' | 'FILLING' | 'DRAINING' | 'REMOVED';

interface Scenario {
  /** Initial items, then changes in the order they happen (null: delete). */
  initial: (number | null)[];
  changes: { key: number; value: number | null }[];
  /** Which enabled step runs next, again and again. */
  choices: number[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  initial: fc.array(fc.option(fc.nat(9), { nil: null }), { minLength: KEYS.length, maxLength: KEYS.length }),
  changes: fc.array(fc.record({ key: fc.nat(KEYS.length - 1), value: fc.option(fc.nat(9), { nil: null }) }), {
    maxLength: 12,
  }),
  choices: fc.array(fc.nat(1000), { minLength: 10, maxLength: 80 }),
});

/** Runs a scenario; returns the new index's documents (JSON) and the table, both by key. */
function run(
  { initial, changes, choices }: Scenario,
  { tombstones = true, waitForFillingBatches = true, waitForCreates = true } = {},
): { index: Map<string, string>; table: Map<string, string> } {
  const table = new Map<string, string>();
  initial.forEach((value, i) => {
    if (value !== null) table.set(KEYS[i] as string, JSON.stringify({ v: value }));
  });
  const log: { key: string; body: string | null }[] = [];
  const index = new Map<string, string>();
  let phase = 'none' as Phase;
  let applied = 0;
  let nextChange = 0;
  let batch: { phase: Phase; end: number } | undefined;
  const unread = new Set(KEYS);
  const reads: { key: string; body: string }[] = [];
  // What a batch that read phase p finds in the state item; without tombstones FILLING deletes for real.
  const state = (p: Phase): ResyncState | undefined =>
    p === 'none'
      ? undefined
      : {
          runId: 'r',
          phase: p === 'FILLING' && tombstones ? 'FILLING' : 'DRAINING',
          targets: { s: 'n' },
          startedAt: '',
          phaseChangedAt: '',
        };

  const applyOne = (batchPhase: Phase) => {
    const record = log[applied] as { key: string; body: string | null };
    applied += 1;
    const write: DocumentWrite =
      record.body === null
        ? { kind: 'delete', index: 's', id: record.key }
        : { kind: 'index', index: 's', id: record.key, body: record.body };
    for (const w of withResyncWrites([write], state(batchPhase))) {
      if (w.index !== 'n') continue;
      if (w.kind === 'delete') index.delete(w.id);
      else index.set(w.id, w.body as string);
    }
  };

  const steps: (() => void)[] = [];
  for (const choice of [...choices, ...Array(200).fill(0)]) {
    steps.length = 0;
    if (nextChange < changes.length) {
      steps.push(() => {
        const { key, value } = changes[nextChange] as { key: number; value: number | null };
        nextChange += 1;
        const name = KEYS[key] as string;
        const body = value === null ? null : JSON.stringify({ v: value });
        if (body === null) table.delete(name);
        else table.set(name, body);
        log.push({ key: name, body });
      });
    }
    if (phase === 'none') steps.push(() => (phase = 'FILLING'));
    if (phase === 'FILLING' && unread.size > 0) {
      steps.push(() => {
        const key = [...unread][choice % unread.size] as string;
        unread.delete(key);
        const body = table.get(key);
        if (body !== undefined) reads.push({ key, body });
      });
    }
    if (reads.length > 0) {
      steps.push(() => {
        const [{ key, body }] = reads.splice(choice % reads.length, 1) as [{ key: string; body: string }];
        if (!index.has(key)) index.set(key, body); // create: left alone when a document exists
      });
    }
    if (!batch && applied < log.length) steps.push(() => (batch = { phase, end: log.length }));
    if (batch) {
      steps.push(() => {
        const running = batch as { phase: Phase; end: number };
        applyOne(running.phase);
        if (applied === running.end) batch = undefined;
      });
    }
    // DRAINING only once no create can land any more: a create of an older read after a real delete wins.
    if (phase === 'FILLING' && unread.size === 0 && (reads.length === 0 || !waitForCreates))
      steps.push(() => (phase = 'DRAINING'));
    if (phase === 'DRAINING' && (!waitForFillingBatches || batch?.phase !== 'FILLING')) {
      steps.push(() => {
        for (const [key, body] of index) if (JSON.parse(body)[TOMBSTONE_FIELD]) index.delete(key);
        phase = 'REMOVED';
      });
    }
    if (steps.length === 0) break;
    (steps[choice % steps.length] as () => void)();
  }
  if (phase !== 'REMOVED') throw new Error(`the schedule ended in phase ${phase}`);
  return { index, table };
}

describe('the resync protocol, on a model of every interleaving', () => {
  it('ends with the new index equal to the table, deletes included, whatever the order', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { index, table } = run(s);
        expect(Object.fromEntries(index)).toEqual(Object.fromEntries(table));
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ['without tombstones', { tombstones: false }],
    ['when tombstones go while a batch that saw FILLING still runs', { waitForFillingBatches: false }],
    ['when DRAINING starts while a create can still land (a zombie worker)', { waitForCreates: false }],
  ])('brings a deleted item back %s (the races the protocol closes)', (_name, variant) => {
    const result = fc.check(
      fc.property(scenario, (s) => {
        const { index, table } = run(s, variant);
        return [...index.keys()].every((key) => table.has(key));
      }),
      { numRuns: 2_000 },
    );
    expect(result.failed).toBe(true);
  });
});
