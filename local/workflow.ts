/**
 * Runs the SAME state machine definition that Step Functions runs
 * (statemachines/backfill.asl.json) on this machine, with
 * aws-local-stepfunctions. Every Task state is bound by its name to local
 * code: the SDK tasks to the local engines and the local updater, the Lambda
 * tasks to the handlers' functions, and "Process segment" (SQS + task token in
 * the cloud) to the worker's code in process. The interpreter runs the
 * Distributed Map's items inline, honours MaxConcurrencyPath, Retry and the
 * Choice/Fail states, and ignores what it does not know (HeartbeatSeconds,
 * ItemReader, ResultWriter, ToleratedFailurePercentage).
 */
import './polyfills';
import { readFileSync } from 'node:fs';
import { ExecutionAbortedError, ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { DEFINITION_PATH } from '../pipeline/contract/definition';
import type { WorkflowInput } from '../pipeline/contract/workflow';
import { BackfillError } from '../pipeline/errors';
import { type IndexDefinition, indexDefinitionSubstitution } from '../pipeline/index/index-definition';
import { MAX_CONCURRENCY, type SegmentPlan } from '../pipeline/plan/plan-segments';
import type { StartRunEvent, StartRunResult } from '../pipeline/plan/start-run';
import type {
  RemoveTombstonesInput,
  ResyncRun,
  StartResyncInput,
  SwapAliasesInput,
  SwapAliasesResult,
} from '../pipeline/resync/resync-steps';
import type { RunSummary } from '../pipeline/summarize/summarize-run';
import type { SegmentMessage, SegmentResult } from '../pipeline/table/types';

/** The input "Plan segments" receives. */
export interface PlanTaskInput {
  runId: string;
  config: Required<Pick<WorkflowInput, 'maxConcurrency' | 'index' | 'retentionBudgetHours'>> & {
    totalSegments: number | null;
    readUnitsPerSecond: number | null;
  };
  table: Record<string, unknown>;
  /** The index definition as JSON text (`null` for none), as the stack substitutes it. */
  indexConfig: string;
  /** A resync's serving name → new index; empty in a backfill. */
  targets: Record<string, string>;
}

/** What "Plan segments" returns: the planner's plan (the definition reads runId, table, index, totalSegments, itemSource, segments, startedAt). */
export type PlanTaskOutput = SegmentPlan;

/** The input "Summarize" receives. */
export interface SummarizeTaskInput {
  runId: string;
  totalSegments: number;
  startedAt: string;
  /** The index the plan prepared (the input's, or the deployment's default). */
  index: string;
  retentionBudgetHours: number;
  /** Where the retention clock starts ("Validate and lock" measured it). */
  oldestUnappliedAt: string;
}

/** The execution's output: the run summary that "Summarize" returns. */
export type { RunSummary };

/** The local code each Task state runs. */
export interface LocalTaskBindings {
  /** "Validate and lock": validates the input, takes the run lock, measures the updater's backlog. */
  startRun(input: StartRunEvent): Promise<StartRunResult>;
  /** "Release lock", after the updater is enabled (or a resync aborted: `completed` false). */
  releaseLock(runId: string, options: { completed: boolean }): Promise<void>;
  pauseUpdater(): Promise<void>;
  enableUpdater(): Promise<void>;
  /** The mapping's State as GetEventSourceMapping reports it (Enabled, Disabled, Disabling, …). */
  updaterState(): string;
  /** DescribeTable's `Table`, as JSON (dates as strings). */
  describeTable(tableName: string): Promise<Record<string, unknown>>;
  planSegments(input: PlanTaskInput): Promise<PlanTaskOutput>;
  /** Runs one whole segment (all its continuations); throws a named error on failure. */
  processSegment(message: SegmentMessage): Promise<SegmentResult>;
  summarize(input: SummarizeTaskInput): Promise<RunSummary>;
  /** "Start resync" (mode resync): the new indices and the FILLING state, or the table's resync as it stands. */
  startResync(input: StartResyncInput): Promise<ResyncRun>;
  /**
   * "Drain resync": the DRAINING state. Locally it also stands for "Wait for resync writers" (bound to
   * 0 s): it returns once no updater page that read FILLING is still being applied.
   */
  drainResync(input: { runId: string }): Promise<void>;
  /** "Remove tombstones". */
  removeTombstones(input: RemoveTombstonesInput): Promise<{ tombstonesRemoved: number }>;
  /** "Swap aliases". */
  swapAliases(input: SwapAliasesInput): Promise<SwapAliasesResult>;
  /** "Abort resync" (`{"mode": "resync", "abort": true}`). */
  abortResync(): Promise<{ runId: string | null; deletedIndices: string[] }>;
}

export interface LocalWorkflowOptions {
  runId: string;
  table: string;
  index: string;
  input?: WorkflowInput;
  /** Deployment defaults the stack would substitute. */
  defaults?: { maxConcurrency?: number; retentionBudgetHours?: number; workerMaxConcurrency?: number };
  /** The index definition a created index gets (`--index-config`), substituted as the stack does. */
  indexConfig?: IndexDefinition;
  bindings: LocalTaskBindings;
  /** Pause between retries of a failed segment (the cloud waits 30 s, 60 s, 120 s). */
  segmentRetryIntervalMs?: number;
  signal?: AbortSignal;
}

/** The execution failed: `error` is the error name the definition saw, `cause` the sentence. */
export class WorkflowFailedError extends BackfillError {
  constructor(
    readonly error: string,
    readonly causeText: string,
    options?: { cause?: unknown },
  ) {
    super(causeText, options);
    this.name = 'WorkflowFailedError';
  }
}

export class WorkflowAbortedError extends BackfillError {
  constructor() {
    super('the backfill was interrupted; run the same command again to resume from the checkpoints');
    this.name = 'WorkflowAbortedError';
  }
}

/** Reads the definition and fills its `${Placeholder}`s; an unknown placeholder is an error. */
export function loadDefinition(substitutions: Record<string, string>): Record<string, unknown> {
  const text = readFileSync(DEFINITION_PATH, 'utf8').replace(/\$\{(\w+)\}/g, (_match, name: string) => {
    const value = substitutions[name];
    if (value === undefined) throw new BackfillError(`the workflow definition needs a value for \${${name}}`);
    return value;
  });
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * The definition as a local run fills it: the same file, with the run's table
 * and index, the local runner's settings and placeholder ARNs. What a run
 * puts in are string values (the names, the index definition as JSON text),
 * so the structure is the same for every run.
 */
export function localDefinition(
  options: Pick<LocalWorkflowOptions, 'table' | 'index' | 'defaults' | 'indexConfig'>,
): Record<string, unknown> {
  return loadDefinition({
    TableName: options.table,
    IndexName: options.index,
    MaxConcurrency: String(options.defaults?.maxConcurrency ?? 4),
    RetentionBudgetHours: String(options.defaults?.retentionBudgetHours ?? 20),
    // The worker runs in process: any concurrency the Map allows.
    WorkerMaxConcurrency: String(options.defaults?.workerMaxConcurrency ?? MAX_CONCURRENCY),
    HeartbeatSeconds: '300',
    SegmentTimeoutSeconds: '21600',
    UpdaterMappingUuid: 'local-stream-follower',
    PlanFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ddb2os-local-plan',
    SummarizeFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ddb2os-local-summarize',
    RunLockFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ddb2os-local-run-lock',
    SegmentQueueUrl: 'local',
    BucketName: 'local',
    IndexConfig: indexDefinitionSubstitution(options.indexConfig),
    ResyncFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ddb2os-local-resync',
    // Not waited locally: the "Drain resync" binding stops the local updater's page in progress instead.
    ResyncCreateWaitSeconds: '0',
    ResyncDrainSeconds: '0',
  });
}

/**
 * The local run's state machine, built without validating the definition
 * again. aws-local-stepfunctions validates a definition by compiling its JSON
 * schemas anew for every StateMachine: 320-560 ms of Node.js CPU (0.02 ms
 * without) before the first Scan of every local backfill, while OpenSearch
 * and DynamoDB wait: about 3 % of the benchmark's 100,000-item backfill of
 * 15 s (docs/benchmarks.md, "Tuning"). Nothing a run substitutes can change
 * the definition's structure (localDefinition), and
 * test/local/workflow.test.ts validates the definition as a run fills it;
 * Step Functions validates the same file when the stack is deployed. The
 * interpreter builds its Map iterations without validation too.
 */
export function localStateMachine(definition: Record<string, unknown>): StateMachine {
  return new StateMachine(definition as never, { validationOptions: { noValidate: true } });
}

export async function runWorkflowLocally(options: LocalWorkflowOptions): Promise<RunSummary> {
  const { bindings } = options;
  const machine = localStateMachine(localDefinition(options));
  const segment = async (input: { MessageBody: SegmentMessage }) => {
    const { taskToken: _token, ...message } = input.MessageBody;
    return bindings.processSegment(message);
  };
  const execution = machine.run((options.input ?? {}) as never, {
    context: {
      Execution: {
        Name: options.runId,
        Id: `arn:aws:states:us-east-1:000000000000:execution:ddb2os-local:${options.runId}`,
        Input: (options.input ?? {}) as never,
        StartTime: new Date().toISOString(),
      },
      // No task tokens locally: the worker runs in process and returns its result.
      Task: { Token: 'local' },
    },
    overrides: {
      waitTimeOverrides: {
        'Wait for updater to pause': 0,
        'Wait for updater to enable': 0,
        'Wait for late creates': 0,
        'Wait for resync writers': 0,
      },
      retryIntervalOverrides: {
        'Process segment': options.segmentRetryIntervalMs ?? 1_000,
        'Process segment from S3 list': options.segmentRetryIntervalMs ?? 1_000,
      },
      taskResourceLocalHandlers: {
        'Validate and lock': async (input: StartRunEvent) => bindings.startRun(input),
        'Release lock': async (input: { runId: string; abort: boolean }) => {
          await bindings.releaseLock(input.runId, { completed: !input.abort });
          return {};
        },
        'Pause updater': async () => {
          await bindings.pauseUpdater();
          return {};
        },
        'Get updater state': async () => ({ State: bindings.updaterState() }),
        'Describe table': async (input: { TableName: string }) => ({
          Table: await bindings.describeTable(input.TableName),
        }),
        'Plan segments': async (input: PlanTaskInput) => {
          const plan = await bindings.planSegments(input);
          // The cloud reads large lists from S3; locally the list always travels inline.
          return { ...plan, itemSource: 'INLINE', segments: plan.segments ?? range(plan.totalSegments) };
        },
        'Process segment': segment,
        'Process segment from S3 list': segment,
        Summarize: async (input: SummarizeTaskInput) => bindings.summarize(input),
        'Enable updater': async () => {
          await bindings.enableUpdater();
          return {};
        },
        'Get updater state after enable': async () => ({ State: bindings.updaterState() }),
        'Get updater state for resync': async () => ({ State: bindings.updaterState() }),
        'Start resync': async (input: StartResyncInput) => bindings.startResync(input),
        'Drain resync': async (input: { runId: string }) => {
          await bindings.drainResync(input);
          return {};
        },
        'Remove tombstones': async (input: RemoveTombstonesInput) => bindings.removeTombstones(input),
        'Swap aliases': async (input: SwapAliasesInput) => bindings.swapAliases(input),
        'Abort resync': async () => bindings.abortResync(),
      } as never,
    },
  });
  const onAbort = () => execution.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return (await execution.result) as unknown as RunSummary;
  } catch (error) {
    if (error instanceof ExecutionAbortedError) throw new WorkflowAbortedError();
    if (error instanceof ExecutionError) {
      const inner = error.cause as { name?: string; message?: string } | undefined;
      throw new WorkflowFailedError(inner?.name ?? 'States.TaskFailed', inner?.message ?? error.message, {
        cause: error,
      });
    }
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
