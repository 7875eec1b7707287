/**
 * The benchmark's items: about 1 KiB each, with the mix a real table has
 * (strings, numbers, a number beyond 2^53 that must stay exact, a nested map,
 * a list of maps, a string set, a number set, a boolean and a null). Values
 * come from a seed, so every run scans the same table.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { seededRandom } from '../local/demo-data';
import type { Item, KeySchema } from '../pipeline/table/types';

export const BENCH_KEY_SCHEMA: KeySchema = { partitionKey: 'pk' };

const WORDS = [
  'amber',
  'basalt',
  'cedar',
  'delta',
  'ember',
  'fjord',
  'granite',
  'harbor',
  'indigo',
  'juniper',
  'kelp',
  'lumen',
  'meadow',
  'nickel',
  'orchid',
  'pepper',
  'quartz',
  'river',
  'saffron',
  'tundra',
  'umber',
  'velvet',
  'willow',
  'xenon',
  'yarrow',
  'zephyr',
];
const CITIES = ['Lisbon', 'Osaka', 'Denver', 'Nairobi', 'Tallinn', 'Recife', 'Perth', 'Quebec'];
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'returned'];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

function words(random: () => number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(pick(random, WORDS));
  return out.join(' ');
}

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: string | number): AttributeValue => ({ N: String(value) });

/** The partition key of item `id`. */
export function benchKey(id: number): string {
  return `order#${String(id).padStart(8, '0')}`;
}

/** Item `id`; `version` changes the values the stream benchmark updates. */
export function benchItem(id: number, random: () => number, version = 1): Item {
  const lines: AttributeValue[] = [];
  const lineCount = 2 + Math.floor(random() * 3);
  for (let line = 1; line <= lineCount; line++) {
    lines.push({
      M: {
        sku: s(`SKU-${Math.floor(random() * 1e6)}`),
        quantity: n(1 + Math.floor(random() * 9)),
        unitPrice: n((random() * 200 + 1).toFixed(2)),
        title: s(words(random, 3)),
      },
    });
  }
  return {
    pk: s(benchKey(id)),
    type: s('order'),
    status: s(pick(random, STATUSES)),
    title: s(words(random, 6)),
    description: s(words(random, 45 + Math.floor(random() * 10))),
    total: n((random() * 2000 + 5).toFixed(2)),
    items: n(lineCount),
    version: n(version),
    // A ledger id beyond 2^53: the document keeps it as an exact string.
    ledgerId: n(`9${String(Math.floor(random() * 1e15)).padStart(18, '0')}`),
    discountRate: n((random() / 3).toFixed(4)),
    createdAt: s(new Date(1_700_000_000_000 + id * 60_000).toISOString()),
    gift: { BOOL: random() > 0.8 },
    cancelledAt: { NULL: true },
    customer: {
      M: {
        id: s(`customer#${Math.floor(random() * 100_000)}`),
        name: s(words(random, 2)),
        email: s(`buyer${id}@example.com`),
        tier: s(pick(random, ['bronze', 'silver', 'gold'])),
        address: {
          M: {
            street: s(`${1 + Math.floor(random() * 999)} ${words(random, 2)} street`),
            city: s(pick(random, CITIES)),
            zip: s(String(10_000 + Math.floor(random() * 89_999))),
          },
        },
      },
    },
    lines: { L: lines },
    tags: { SS: [...new Set([pick(random, WORDS), pick(random, WORDS), `batch-${id % 97}`])] },
    // A number set mixing integers and decimals (never equal: x.5 is no integer).
    ratings: { NS: [String(1 + Math.floor(random() * 5)), `${Math.floor(random() * 5)}.5`, '1000'] },
  };
}

/** Items 1..count, the same for the same seed. */
export function* benchItems(count: number, seed = 7, first = 1): Generator<Item> {
  const random = seededRandom(seed + first);
  for (let id = first; id < first + count; id++) yield benchItem(id, random);
}
