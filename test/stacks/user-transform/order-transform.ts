/**
 * A user's transform module, as BackfillWorkflow's transformModule names it:
 * TypeScript, with an import of its own, so the tests see that esbuild bundles
 * both into the functions. One document per order, in `<default index>-orders`.
 */
import type { TransformHook } from '../../../pipeline/mapping/mapping';
import { orderDocumentId } from './order-id';

const transform: TransformHook = (item, { defaultIndex }) => {
  const order = item.pk?.S;
  if (order === undefined) return null;
  return {
    index: `${defaultIndex}-orders`,
    id: orderDocumentId(order, item.sk?.S ?? ''),
    document: {
      order,
      total: Number(item.quantity?.N ?? '0') * Number(item.price?.N ?? '0'),
      mappedBy: 'order-transform fixture',
    },
  };
};

export default transform;
