/**
 * Where a write goes during a resync (docs/guarantees.md, "Resync"): the
 * updater writes every change to the serving name as always, and also to the
 * index being filled for it; in FILLING a delete becomes a tombstone there,
 * so that the backfill's create of an older read cannot bring the item back.
 */
import type { MappingConfig } from '../mapping/mapping';
import type { ResyncState } from './resync-state';
import { tombstoneLine } from './tombstones';

/** One document write of the updater: overwrite with `body`, or delete. */
export interface DocumentWrite {
  kind: 'index' | 'delete';
  index: string;
  id: string;
  /** The document's JSON (index only). */
  body?: string;
}

/**
 * The writes that carry `writes` out while `state` is in progress: each write as it is, followed, when
 * its index is a serving name being resynced, by its copy for the new index (a delete in FILLING as a
 * tombstone); a copy keeps the write's other fields. Without a resync, `writes` unchanged.
 */
export function withResyncWrites<W extends DocumentWrite>(writes: W[], state: ResyncState | undefined): W[] {
  if (!state) return writes;
  return writes.flatMap((write) => {
    const target = state.targets[write.index];
    if (target === undefined || target === write.index) return [write];
    if (write.kind === 'delete' && state.phase === 'FILLING') {
      return [write, { ...write, kind: 'index', index: target, body: tombstoneLine(state.runId) }];
    }
    return [write, { ...write, index: target }];
  });
}

/** The index the backfill of a resync writes to instead of `index` (itself outside a resync's targets). */
export function resyncTargetOf(index: string, targets: Record<string, string> | undefined): string {
  return targets?.[index] ?? index;
}

/**
 * The mapping the backfill of a resync writes with: each index it names (its `index`, its routes')
 * replaced by the index being filled for it. Without targets, `mapping` itself.
 */
export function retargetMapping<M extends Pick<MappingConfig, 'index' | 'routes'>>(
  mapping: M,
  targets: Record<string, string> | undefined,
): M {
  if (!targets || Object.keys(targets).length === 0) return mapping;
  return {
    ...mapping,
    index: resyncTargetOf(mapping.index, targets),
    ...(mapping.routes
      ? { routes: mapping.routes.map((route) => ({ ...route, index: resyncTargetOf(route.index, targets) })) }
      : {}),
  };
}
