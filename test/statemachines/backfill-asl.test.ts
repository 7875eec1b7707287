/**
 * Static checks of statemachines/backfill.asl.json: the file the stack
 * deploys and the local runner executes. Nothing here runs the workflow.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { StateMachine } from 'aws-local-stepfunctions';
import { describe, expect, it } from 'vitest';
import { BUCKET_PREFIXES } from '../../pipeline/contract/bucket';
import { DEFINITION_PATH } from '../../pipeline/contract/definition';
import { WORKFLOW_INPUT_KEYS } from '../../pipeline/contract/workflow';

interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  ItemSelector?: Record<string, unknown>;
  ItemProcessor?: {
    ProcessorConfig?: Record<string, string>;
    StartAt: string;
    States: Record<string, AslState>;
  };
  Retry?: { ErrorEquals: string[]; MaxAttempts?: number; BackoffRate?: number; JitterStrategy?: string }[];
  Catch?: unknown[];
  [field: string]: unknown;
}
interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
}

const require = createRequire(import.meta.url);
const aslValidator = require('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};

const text = readFileSync(DEFINITION_PATH, 'utf8');

/** Values of the shape the stack substitutes (CloudFormation replaces `${Name}` in the text). */
const SUBSTITUTIONS: Record<string, string> = {
  IndexName: 'orders',
  MaxConcurrency: '10',
  RetentionBudgetHours: '20',
  WorkerMaxConcurrency: '10',
  HeartbeatSeconds: '300',
  SegmentTimeoutSeconds: '21600',
  UpdaterMappingUuid: '14e0db71-5d35-4eb5-b481-8945cf9d10c2',
  TableName: 'orders',
  PlanFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:plan',
  SummarizeFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:summarize',
  RunLockFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:run-lock',
  SegmentQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/segments',
  BucketName: 'ddb2os-bucket',
  IndexConfig: 'null',
  ResyncFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:resync',
  ResyncDrainSeconds: '900',
};

function substituted(): AslDefinition {
  return JSON.parse(
    text.replace(/\$\{(\w+)\}/g, (placeholder, name: string) => SUBSTITUTIONS[name] ?? placeholder),
  ) as AslDefinition;
}

const definition = substituted();
const states = definition.States;
const maps = ['Backfill segments', 'Backfill segments from S3'].map((name) => states[name] as AslState);
const segmentTasks = maps.map((map) => {
  const processor = map.ItemProcessor as NonNullable<AslState['ItemProcessor']>;
  return processor.States[processor.StartAt] as AslState;
});

describe('the backfill definition file', () => {
  it('is JSON before substitution, with every placeholder inside a string', () => {
    expect(() => JSON.parse(text)).not.toThrow();
  });

  it('uses exactly the placeholders the stack substitutes', () => {
    const placeholders = new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((match) => match[1]));
    expect([...placeholders].sort()).toEqual(Object.keys(SUBSTITUTIONS).sort());
  });

  it('is valid ASL for asl-validator once substituted', () => {
    // A fresh copy: validators annotate the definition they are given.
    const result = aslValidator(substituted());
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('is accepted by the aws-local-stepfunctions validator that the local runner uses', () => {
    // A fresh copy: the constructor annotates the definition it is given.
    expect(() => new StateMachine(substituted() as never)).not.toThrow();
  });

  it('keeps the Task state names the local runner binds its handlers to', () => {
    const taskNames = (scope: Record<string, AslState>): string[] =>
      Object.entries(scope).flatMap(([name, state]) => [
        ...(state.Type === 'Task' ? [name] : []),
        ...(state.ItemProcessor ? taskNames(state.ItemProcessor.States) : []),
      ]);
    expect(taskNames(states).sort()).toEqual(
      [
        'Validate and lock',
        'Pause updater',
        'Get updater state',
        'Describe table',
        'Plan segments',
        'Process segment',
        'Process segment from S3 list',
        'Summarize',
        'Enable updater',
        'Get updater state after enable',
        'Release lock',
        'Get updater state for resync',
        'Start resync',
        'Drain resync',
        'Remove tombstones',
        'Swap aliases',
        'Abort resync',
      ].sort(),
    );
  });
});

describe('reading the input', () => {
  it('has a default for every optional input field, so {} works', () => {
    const readInput = states['Read input'] as AslState;
    const defaults = (readInput.Parameters as { defaults: Record<string, unknown> }).defaults;
    const fields = Object.keys(defaults).map((key) => key.replace(/\.\$$/, ''));
    expect(fields.sort()).toEqual([...WORKFLOW_INPUT_KEYS].sort());
  });

  it('validates the input against the deployment and takes the run lock before anything else, naming the execution', () => {
    expect(states['Read input']?.Next).toBe('Validate and lock');
    expect(states['Validate and lock']).toMatchObject({
      Resource: SUBSTITUTIONS.RunLockFunctionArn,
      Parameters: {
        action: 'start',
        'runId.$': '$$.Execution.Name',
        'executionArn.$': '$$.Execution.Id',
        'input.$': '$.input',
        'defaults.$': '$.defaults',
        deployment: {
          'workerMaxConcurrency.$': "States.StringToJson('10')",
          index: SUBSTITUTIONS.IndexName,
        },
      },
      ResultPath: '$.start',
      Next: 'Set up run',
    });
    // Only the Lambda service is retried: a bad input or a held lock fails the execution at once.
    const retried = (states['Validate and lock']?.Retry ?? []).flatMap((retry) => retry.ErrorEquals);
    expect(retried.every((error) => error.startsWith('Lambda.'))).toBe(true);
  });

  it('keeps the validated config, the retention clock and the execution name as runId and fill run, then chooses the mode', () => {
    expect(states['Set up run']).toMatchObject({
      Parameters: {
        'runId.$': '$$.Execution.Name',
        'config.$': '$.start.config',
        'oldestUnappliedAt.$': '$.start.oldestUnappliedAt',
        // A backfill fills the serving names with the execution's checkpoints.
        fill: { 'runId.$': '$$.Execution.Name', targets: {} },
        waits: { pause: 0, enable: 0 },
      },
      Next: 'Backfill or resync?',
    });
    expect(states['Backfill or resync?']).toMatchObject({ Default: 'Pause updater' });
  });
});

describe('pausing and enabling the updater', () => {
  it('disables, then polls until the mapping is Disabled', () => {
    expect(states['Pause updater']).toMatchObject({
      Resource: 'arn:aws:states:::aws-sdk:lambda:updateEventSourceMapping',
      Parameters: { Uuid: SUBSTITUTIONS.UpdaterMappingUuid, Enabled: false },
    });
    expect(states['Updater paused?']).toMatchObject({
      Choices: [
        { Variable: '$.updater.state', StringEquals: 'Disabled', Next: 'Describe table' },
        { Variable: '$.waits.pause', NumericGreaterThanEquals: 60, Next: 'Explain updater not pausing' },
      ],
      Default: 'Wait for updater to pause',
    });
    expect(states['Wait for updater to pause']).toMatchObject({ Seconds: 5, Next: 'Count pause check' });
    expect(states['Count pause check']).toMatchObject({
      Parameters: { 'pause.$': 'States.MathAdd($.waits.pause, 1)', 'enable.$': '$.waits.enable' },
      ResultPath: '$.waits',
      Next: 'Get updater state',
    });
  });

  it('enables, polls until the mapping is Enabled, then releases the run lock before it reports success', () => {
    expect(states['Enable updater']).toMatchObject({ Parameters: { Enabled: true } });
    expect(states['Updater enabled?']).toMatchObject({
      Choices: [
        { Variable: '$.updater.state', StringEquals: 'Enabled', Next: 'Release lock' },
        { Variable: '$.waits.enable', NumericGreaterThanEquals: 60, Next: 'Explain updater not enabling' },
      ],
      Default: 'Wait for updater to enable',
    });
    expect(states['Count enable check']).toMatchObject({
      Parameters: { 'pause.$': '$.waits.pause', 'enable.$': 'States.MathAdd($.waits.enable, 1)' },
      ResultPath: '$.waits',
    });
    expect(states['Release lock']).toMatchObject({
      Resource: SUBSTITUTIONS.RunLockFunctionArn,
      Parameters: { action: 'release', 'runId.$': '$.runId' },
      ResultPath: null,
      Next: 'Completed as?',
    });
    expect(states['Completed as?']).toMatchObject({ Default: 'Backfill complete' });
  });

  it('gives up waiting after 60 checks with a cause naming the mapping and its last state', () => {
    for (const [explain, fail] of [
      ['Explain updater not pausing', 'Updater did not pause'],
      ['Explain updater not enabling', 'Updater did not enable'],
    ] as const) {
      const cause = String(states[explain]?.Parameters?.['cause.$']);
      expect(cause).toContain(
        `event source mapping ${SUBSTITUTIONS.UpdaterMappingUuid}) is still {} after 60 checks`,
      );
      expect(cause).toMatch(/', \$\.updater\.state\)$/);
      expect(cause.slice("States.Format('".length, cause.lastIndexOf("',"))).not.toContain("'");
      expect(states[explain]?.Next).toBe(fail);
      expect(states[fail]).toEqual({ Type: 'Fail', Error: 'UpdaterStateTimeoutError', CausePath: '$.cause' });
    }
  });
});

describe('the segment Maps', () => {
  it('are Distributed Maps of STANDARD child executions (task tokens need them)', () => {
    for (const map of maps) {
      expect(map.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    }
  });

  it('tolerate no failure and catch nothing, so a failed Map Run fails the execution at the Map and a redrive reruns its failed segments', () => {
    for (const map of maps) {
      expect(map.ToleratedFailurePercentage).toBe(0);
      expect(map.Catch).toBeUndefined();
    }
  });

  it('take their concurrency from the input and write results to S3 (under the prefix IAM allows) rather than to the state', () => {
    for (const map of maps) {
      expect(map.MaxConcurrencyPath).toBe('$.config.maxConcurrency');
      expect(map.ResultWriter).toMatchObject({
        Resource: 'arn:aws:states:::s3:putObject',
        // Step Functions adds the slash between the prefix and the Map Run's folder.
        Parameters: {
          Bucket: SUBSTITUTIONS.BucketName,
          Prefix: BUCKET_PREFIXES.mapResults.replace(/\/$/, ''),
        },
      });
    }
  });

  it('read the segments inline or from the S3 list the planner wrote', () => {
    expect(maps[0]?.ItemsPath).toBe('$.plan.segments');
    expect(maps[1]?.ItemReader).toMatchObject({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { 'Bucket.$': '$.plan.bucket', 'Key.$': '$.plan.key' },
    });
    expect(states['Segment list inline?']).toMatchObject({
      Choices: [
        { Variable: '$.plan.itemSource', StringEquals: 'INLINE', Next: 'Backfill segments' },
        { Variable: '$.plan.itemSource', StringEquals: 'S3', Next: 'Backfill segments from S3' },
      ],
    });
  });

  it('build each item from the plan and the segment number', () => {
    for (const map of maps) {
      expect(map.ItemSelector).toEqual({
        MessageBody: {
          'runId.$': '$.plan.runId',
          'table.$': '$.plan.table',
          'index.$': '$.plan.index',
          'segment.$': '$$.Map.Item.Value',
          'totalSegments.$': '$.plan.totalSegments',
          'readUnitsPerSecond.$': '$.config.readUnitsPerSecond',
          'heartbeatSeconds.$': '$.settings.heartbeatSeconds',
          'segmentTimeoutSeconds.$': '$.settings.segmentTimeoutSeconds',
          'targets.$': '$.fill.targets',
        },
      });
    }
  });

  it('process segments the same way in both Maps', () => {
    const [inline, fromS3] = segmentTasks.map(({ Comment: _comment, ...task }) => task);
    expect(fromS3).toEqual(inline);
  });
});

describe('processing a segment', () => {
  const task = segmentTasks[0] as AslState;

  it('sends the segment message with its task token to the queue and waits for the worker', () => {
    expect(task.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(task.Parameters).toMatchObject({
      QueueUrl: SUBSTITUTIONS.SegmentQueueUrl,
      MessageBody: {
        'taskToken.$': '$$.Task.Token',
        'runId.$': '$.MessageBody.runId',
        'segment.$': '$.MessageBody.segment',
        'totalSegments.$': '$.MessageBody.totalSegments',
      },
    });
  });

  it('fails a segment whose worker stops heartbeating, and bounds an attempt by the segment timeout', () => {
    // The paths resolve both in the state input and in the effective input (after Parameters).
    expect(task.HeartbeatSecondsPath).toBe('$.MessageBody.heartbeatSeconds');
    expect(task.TimeoutSecondsPath).toBe('$.MessageBody.segmentTimeoutSeconds');
    const setUp = states['Set up run'] as AslState;
    expect(setUp.Parameters?.settings).toEqual({
      'heartbeatSeconds.$': "States.StringToJson('300')",
      'segmentTimeoutSeconds.$': "States.StringToJson('21600')",
      'resyncDrainSeconds.$': "States.StringToJson('900')",
    });
  });

  it('never retries configuration, message or source-table errors', () => {
    expect(task.Retry?.[0]).toEqual({
      ErrorEquals: ['ConfigurationError', 'InvalidMessageError', 'SourceTableError'],
      MaxAttempts: 0,
    });
  });

  it('retries timeouts, lost heartbeats, an unavailable sink and other task failures 3 times with jittered backoff', () => {
    expect(task.Retry?.[1]).toMatchObject({
      ErrorEquals: ['States.Timeout', 'States.HeartbeatTimeout', 'SinkUnavailableError', 'States.TaskFailed'],
      MaxAttempts: 3,
      BackoffRate: 2,
      JitterStrategy: 'FULL',
    });
    expect(task.Retry).toHaveLength(2);
  });
});

describe('the retention guard', () => {
  it('fails, leaving the updater paused, when the updater backlog and its drain need more than the budget', () => {
    expect(states.Summarize?.Parameters).toMatchObject({ 'oldestUnappliedAt.$': '$.oldestUnappliedAt' });
    expect(states['Within retention budget?']).toMatchObject({
      Choices: [
        {
          Variable: '$.summary.retentionHours',
          NumericGreaterThanPath: '$.config.retentionBudgetHours',
          Next: 'Explain retention budget overrun',
        },
      ],
      Default: 'Enable updater',
    });
    expect(states['Retention budget exceeded']).toEqual({
      Type: 'Fail',
      Error: 'RetentionBudgetExceededError',
      CausePath: '$.cause',
    });
  });

  it('explains in the cause what happened and what to do', () => {
    const cause = String((states['Explain retention budget overrun'] as AslState).Parameters?.['cause.$']);
    expect(cause).toMatch(
      /^States\.Format\('The stream updater stays paused: the oldest change it has not applied is \{\} hours old and draining needs about \{\} hours more, beyond the retention budget of \{\} hours/,
    );
    expect(cause).toMatch(
      /', \$\.summary\.unappliedHours, \$\.summary\.drainMarginHours, \$\.config\.retentionBudgetHours\)$/,
    );
    expect(cause).toContain('24 hours');
    expect(cause).toContain('start a new execution with a higher maxConcurrency or totalSegments');
    // An apostrophe would end the intrinsic's string literal.
    expect(cause.slice("States.Format('".length, cause.lastIndexOf("',"))).not.toContain("'");
  });
});

describe('the result', () => {
  it('is the run summary', () => {
    expect(states['Backfill complete']).toMatchObject({
      Type: 'Pass',
      End: true,
      Parameters: {
        'runId.$': '$.summary.runId',
        'segments.$': '$.summary.segments',
        'scanned.$': '$.summary.scanned',
        'created.$': '$.summary.created',
        'alreadyPresent.$': '$.summary.alreadyPresent',
        'failed.$': '$.summary.failed',
        'skipped.$': '$.summary.skipped',
        'retried.$': '$.summary.retried',
        'durationSeconds.$': '$.summary.durationSeconds',
        'oldestUnappliedAt.$': '$.summary.oldestUnappliedAt',
      },
    });
  });
});

describe('resync mode', () => {
  const resyncFunction = SUBSTITUTIONS.ResyncFunctionArn;
  const resyncing = { Variable: '$.config.mode', StringEquals: 'resync' };
  const abortingResync = { And: [resyncing, { Variable: '$.config.abort', BooleanEquals: true }] };

  it('leaves the updater running: a resync skips the pause, and an abort goes straight to its task', () => {
    expect(states['Backfill or resync?']?.Choices).toEqual([
      { ...abortingResync, Next: 'Abort resync' },
      { ...resyncing, Next: 'Get updater state for resync' },
    ]);
  });

  it('refuses to start while the updater is Disabled, since nothing would carry the changes into the new index', () => {
    expect(states['Updater running for resync?']).toMatchObject({
      Choices: [
        { Variable: '$.updater.state', StringEquals: 'Disabled', Next: 'Explain updater not running' },
      ],
      Default: 'Start resync',
    });
    expect(states['Explain updater not running']?.Next).toBe('Updater not running');
    expect(states['Updater not running']).toEqual({
      Type: 'Fail',
      Error: 'UpdaterNotRunningError',
      CausePath: '$.cause',
    });
  });

  it("starts (or resumes) the table's resync with the deployment's index definition; its run replaces the fill run", () => {
    expect(states['Start resync']).toMatchObject({
      Resource: resyncFunction,
      Parameters: { action: 'start', 'runId.$': '$$.Execution.Name', indexConfig: SUBSTITUTIONS.IndexConfig },
      ResultPath: '$.fill',
      Next: 'Resync filled?',
    });
    expect(states['Resync filled?']).toMatchObject({
      Choices: [{ Variable: '$.fill.phase', StringEquals: 'DRAINING', Next: 'Resync already filled' }],
      Default: 'Describe table',
    });
    expect(states['Resync already filled']).toMatchObject({ ResultPath: '$.summary', Next: 'Drain resync' });
  });

  it('plans, scans and summarizes the fill run, whose segments write the new indices', () => {
    expect(states['Plan segments']?.Parameters).toMatchObject({
      'runId.$': '$.fill.runId',
      'targets.$': '$.fill.targets',
    });
    for (const task of segmentTasks) {
      expect(task.Parameters?.MessageBody).toMatchObject({ 'targets.$': '$.MessageBody.targets' });
    }
    expect(states.Summarize?.Parameters).toMatchObject({ 'runId.$': '$.plan.runId' });
  });

  it('has no retention guard: after the summary a resync drains instead', () => {
    expect(states.Summarize?.Next).toBe('Backfill or resync summarized?');
    expect(states['Backfill or resync summarized?']).toMatchObject({
      Choices: [{ Variable: '$.config.mode', StringEquals: 'resync', Next: 'Drain resync' }],
      Default: 'Within retention budget?',
    });
  });

  it('drains, waits out every writer that saw FILLING, removes the tombstones, swaps, then releases the lock', () => {
    expect(states['Drain resync']).toMatchObject({
      Resource: resyncFunction,
      Parameters: { action: 'drain', 'runId.$': '$.fill.runId' },
      Next: 'Wait for resync writers',
    });
    expect(states['Wait for resync writers']).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.settings.resyncDrainSeconds',
      Next: 'Remove tombstones',
    });
    expect(states['Remove tombstones']).toMatchObject({
      Resource: resyncFunction,
      Parameters: { action: 'removeTombstones', 'runId.$': '$.fill.runId', 'targets.$': '$.fill.targets' },
      Next: 'Swap aliases',
    });
    expect(states['Swap aliases']).toMatchObject({
      Resource: resyncFunction,
      Parameters: {
        action: 'swap',
        'runId.$': '$.fill.runId',
        'targets.$': '$.fill.targets',
        'keepOld.$': '$.config.keepOld',
      },
      Next: 'Release lock',
    });
    expect(states['Abort resync']).toMatchObject({
      Resource: resyncFunction,
      Parameters: { action: 'abort' },
      Next: 'Release lock',
    });
  });

  it('retries only the Lambda service on its steps: a resync error (tombstones left) fails the run with its sentence', () => {
    for (const name of [
      'Start resync',
      'Drain resync',
      'Remove tombstones',
      'Swap aliases',
      'Abort resync',
    ]) {
      const retried = (states[name]?.Retry ?? []).flatMap((retry) => retry.ErrorEquals);
      expect(retried.length).toBeGreaterThan(0);
      expect(retried.every((error) => error.startsWith('Lambda.'))).toBe(true);
      expect(states[name]?.Catch).toBeUndefined();
    }
  });

  it("ends with the resync's result: the fill's counts, the targets, the swaps and the deleted indices", () => {
    expect(states['Completed as?']?.Choices).toEqual([
      { ...abortingResync, Next: 'Resync aborted' },
      { ...resyncing, Next: 'Resync complete' },
    ]);
    expect(states['Resync complete']).toMatchObject({
      End: true,
      Parameters: {
        'runId.$': '$.fill.runId',
        'scanned.$': '$.summary.scanned',
        'targets.$': '$.fill.targets',
        'swaps.$': '$.swap.swaps',
        'deletedIndices.$': '$.swap.deletedIndices',
        'tombstonesRemoved.$': '$.tombstones.tombstonesRemoved',
      },
    });
    expect(states['Resync aborted']).toMatchObject({
      End: true,
      Parameters: { 'abortedRunId.$': '$.aborted.runId', 'deletedIndices.$': '$.aborted.deletedIndices' },
    });
  });
});
