/**
 * Where a write goes during a resync (docs/guarantees.md, "Resync"): the
 * updater writes every change to the serving name as always, and also to the
 * index being filled for it; in FILLING a delete becomes a tombstone there,
 * so that the backfill's create of an older read cannot bring the item back.
 */
import type { MappedDocument, MappingConfig, TransformHook } from '../mapping/mapping';
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
 * The serving names a resync is filling a new index for, each with that index: its targets without
 * those that name the serving index itself. The one rule of which writes get a copy.
 */
export function fillingTargets(state: ResyncState): Record<string, string> {
  return Object.fromEntries(Object.entries(state.targets).filter(([serving, next]) => next !== serving));
}

/**
 * The writes that carry `writes` out while `state` is in progress: each write as it is, followed, when
 * its index is a serving name being resynced, by its copy for the new index (a delete in FILLING as a
 * tombstone); a copy keeps the write's other fields. Without a resync, `writes` unchanged.
 */
export function withResyncWrites<W extends DocumentWrite>(writes: W[], state: ResyncState | undefined): W[] {
  if (!state) return writes;
  const filling = fillingTargets(state);
  return writes.flatMap((write) => {
    const target = filling[write.index];
    if (target === undefined) return [write];
    return [write, asResyncDelete({ ...write, index: target }, state)];
  });
}

/**
 * How a write reaches an index being filled: in FILLING a delete there becomes the run's tombstone;
 * any other write goes as it is. Also the removal of a document OpenSearch rejected (the updater's
 * clean-up): a real delete in FILLING would let the backfill's create of an older read land after it.
 */
export function asResyncDelete<W extends DocumentWrite>(write: W, state: ResyncState | undefined): W {
  if (write.kind !== 'delete' || state?.phase !== 'FILLING') return write;
  const filling = Object.values(fillingTargets(state)).includes(write.index);
  return filling ? { ...write, kind: 'index', body: tombstoneLine(state.runId) } : write;
}

/** The index the backfill of a resync writes to instead of `index` (itself outside a resync's targets). */
export function resyncTargetOf(index: string, targets: Record<string, string> | undefined): string {
  return targets?.[index] ?? index;
}

/**
 * The mapping the backfill of a resync writes with: each index it names (its `index`, its routes')
 * replaced by the index being filled for it, and so is each index a transform returns (the
 * transform still sees the serving name as its `defaultIndex`). Without targets, `mapping` itself.
 */
export function retargetMapping<M extends Pick<MappingConfig, 'index' | 'routes' | 'transform'>>(
  mapping: M,
  targets: Record<string, string> | undefined,
): M {
  if (!targets || Object.keys(targets).length === 0) return mapping;
  const { transform } = mapping;
  return {
    ...mapping,
    index: resyncTargetOf(mapping.index, targets),
    ...(mapping.routes
      ? { routes: mapping.routes.map((route) => ({ ...route, index: resyncTargetOf(route.index, targets) })) }
      : {}),
    ...(transform
      ? {
          transform: ((item, context) => {
            const mapped = transform(item, { ...context, defaultIndex: mapping.index });
            if (!mapped) return mapped;
            const retarget = (document: MappedDocument) => ({
              ...document,
              index: resyncTargetOf(document.index, targets),
            });
            return Array.isArray(mapped) ? mapped.map(retarget) : retarget(mapped);
          }) satisfies TransformHook,
        }
      : {}),
  };
}
