/**
 * ddb2os as a library: add the backfill workflow and the stream updater to
 * the CDK app that already has your DynamoDB table and OpenSearch domain.
 *
 * ```ts
 * import { BackfillWorkflow } from 'ddb2os';
 * new BackfillWorkflow(this, 'Search', { table, domain, index: 'orders' });
 * ```
 *
 * The Lambda code ships prebuilt in the package; only a `transformModule`
 * is bundled at synth, which needs esbuild in your app. The README's "Add to
 * your CDK app" has the whole example.
 *
 * @packageDocumentation
 */

export type { IndexDefinition } from '../pipeline/index/index-definition';
export type { MappedDocument, MappingConfig, TransformHook } from '../pipeline/mapping/mapping';
export type { Item, KeySchema } from '../pipeline/table/types';
export { BackfillDashboard, type BackfillDashboardProps } from '../stacks/backfill-dashboard';
export {
  BackfillStack,
  type BackfillStackProps,
  type BackfillWorkflowSettings,
} from '../stacks/backfill-stack';
export {
  BackfillWorkflow,
  type BackfillWorkflowProps,
  OPENSEARCH_ACTIONS,
  type OpenSearchAccess,
} from '../stacks/backfill-workflow';
export type { ChangeSourceKind, ChangeSourceProps, UpdaterSource } from '../stacks/change-source';
export type { HandlerFunction, HandlerFunctionProps, HandlerName } from '../stacks/handler-function';
