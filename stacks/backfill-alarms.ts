import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  Metric,
  TreatMissingData as Missing,
  type TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { WHERE_CHANGES_WAIT } from '../pipeline/contract/change-source';
import { UPDATER_METRICS } from '../pipeline/contract/metrics';
import type { BackfillWorkflow } from './backfill-workflow';
import { METRICS_NAMESPACE, SERVICE_NAME } from './handler-function';
import type { UpdaterWatchdog } from './updater-watchdog';

export interface BackfillAlarmsProps {
  readonly workflow: BackfillWorkflow;
  readonly watchdog: UpdaterWatchdog;
  /** The updater's iterator age above which the updater counts as behind. */
  readonly iteratorAgeThreshold: Duration;
  /** Where every alarm notifies, on ALARM and on OK. @default - no action */
  readonly alarmTopic?: ITopic;
}

/**
 * Every alarm of a deployment, each saying what it means and what to run
 * (docs/deploy.md, "Alarms", says the same at more length). An alarm counts
 * its first bad data point: each stands for changes that are not in the
 * index, or soon will not be.
 */
export class BackfillAlarms extends Construct {
  /** The updater is paused outside a backfill, or the watchdog is silent. */
  readonly updaterPaused: Alarm;
  readonly updaterProblem: Alarm;
  /** The updater lags: its iterator age (stream sources) or the change queue's oldest message (SQS). */
  readonly iteratorAge: Alarm;
  /** A batch is in the stream failure queue; none for an SQS source. */
  readonly streamFailures?: Alarm;
  /** A message is in the change queue's dead-letter queue; only for an SQS source whose redrive policy is known here. */
  readonly changeQueueDeadLetters?: Alarm;
  readonly updaterErrors: Alarm;
  readonly streamDeadLetters: Alarm;
  readonly segmentDeadLetters: Alarm;
  readonly executionsFailed: Alarm;

  constructor(scope: Construct, id: string, props: BackfillAlarmsProps) {
    super(scope, id);
    const { workflow, watchdog } = props;
    const minute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);
    const uuid = workflow.updaterMappingId;
    const atLeastOne = (
      name: string,
      metric: IMetric,
      treatMissingData: TreatMissingData,
      alarmDescription: string,
    ) =>
      new Alarm(this, name, {
        alarmDescription,
        metric,
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData,
      });

    this.updaterPaused = atLeastOne(
      'UpdaterPausedAlarm',
      watchdog.pausedOutsideBackfill,
      // The watchdog publishes every 5 minutes; a period without a data point means it failed or
      // stopped, and a silent watchdog would hide a paused updater.
      Missing.BREACHING,
      'The stream updater is paused although a backfill has completed and none runs (or the watchdog ' +
        `could not check it): changes wait in ${WHERE_CHANGES_WAIT[workflow.updaterSource.source.kind]}. The watchdog log ` +
        `(${watchdog.watchdogFunction.functionName}) says what to run: aws lambda ` +
        `update-event-source-mapping --uuid ${uuid} --enabled, or a redrive of the failed backfill that ` +
        'holds the run lock.',
    );
    this.updaterProblem = atLeastOne(
      'UpdaterProblemAlarm',
      watchdog.updaterProblem,
      // The paused alarm already turns a silent watchdog into an alarm.
      Missing.NOT_BREACHING,
      "The updater's event source mapping reports PROBLEM as its last processing result (a permission, " +
        'the function failing as a whole). Read the updater logs and fix the cause; the mapping retries by itself.',
    );
    const { lag, failureQueue, queueDeadLetterQueue, source } = workflow.updaterSource;
    const threshold = props.iteratorAgeThreshold.toHumanString();
    this.iteratorAge = new Alarm(this, 'IteratorAgeAlarm', {
      alarmDescription:
        source.kind === 'sqs'
          ? `The oldest message in the change queue has waited more than ${threshold} for 5 minutes. Expected ` +
            'during a backfill (the updater is paused and messages wait) and for a while after it; otherwise the ' +
            'updater cannot keep up or keeps failing (see the updater logs). Messages older than the queue ' +
            "retention are deleted, and those received too often go to the queue's dead-letter queue."
          : `The stream updater is more than ${threshold} behind the table for ` +
            '5 minutes. Expected for a while right after a backfill enables it; otherwise it cannot keep up or ' +
            `keeps failing (see the updater logs). Changes older than the stream's retention (24 hours for a ` +
            'DynamoDB stream) leave it. A paused updater emits no iterator age, so this alarm stays OK then: the ' +
            'UpdaterPausedOutsideBackfill alarm covers that case.',
      metric: lag.metric,
      threshold: lag.threshold(props.iteratorAgeThreshold),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      // No traffic, or a paused stream mapping, emits nothing: that is not lag.
      treatMissingData: Missing.NOT_BREACHING,
    });
    if (failureQueue) {
      this.streamFailures = atLeastOne(
        'StreamFailuresAlarm',
        failureQueue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
        Missing.NOT_BREACHING,
        source.kind === 'kinesis'
          ? 'The updater gave up on a Kinesis batch: its changes are not in OpenSearch. ddb2os verify --repair ' +
              'fixes the documents from the table (ddb2os replay reads DynamoDB stream batches only).'
          : 'The updater gave up on a stream batch: its changes are not in OpenSearch. While the stream still ' +
              'holds them, apply them with ddb2os replay; after that, ddb2os verify --repair fixes ' +
              'the documents from the table.',
      );
    }
    if (queueDeadLetterQueue) {
      this.changeQueueDeadLetters = atLeastOne(
        'ChangeQueueDeadLettersAlarm',
        queueDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: minute,
          statistic: 'Maximum',
        }),
        Missing.NOT_BREACHING,
        "The change queue's redrive policy moved a message the updater kept failing on to its dead-letter " +
          'queue: that change is not in OpenSearch. Read the updater logs, fix the cause, then ddb2os verify ' +
          '--repair fixes the documents from the table.',
      );
    }
    this.updaterErrors = new Alarm(this, 'UpdaterErrorsAlarm', {
      alarmDescription:
        'The updater has failed stream batches as a whole for 15 minutes (OpenSearch unreachable, a bug): ' +
        'the event source retries them, but the index falls behind. Read the updater logs.',
      metric: workflow.updaterFunction.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // One failed batch is retried and usually passes; failures in three periods in a row are not a blip.
      evaluationPeriods: 3,
      treatMissingData: Missing.NOT_BREACHING,
    });
    this.streamDeadLetters = atLeastOne(
      'StreamDeadLettersAlarm',
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: UPDATER_METRICS.recordsDeadLettered,
        dimensionsMap: { service: SERVICE_NAME },
        statistic: 'Sum',
        period: fiveMinutes,
      }),
      Missing.NOT_BREACHING,
      'The updater could not index some changed items (mapping errors, documents OpenSearch refused) and ' +
        `wrote them with their reasons to the bucket ${workflow.bucket.bucketName} under dead-letter/. Fix ` +
        'the cause, then ddb2os verify --repair.',
    );
    this.segmentDeadLetters = atLeastOne(
      'SegmentDeadLettersAlarm',
      workflow.segmentDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: minute,
        statistic: 'Maximum',
      }),
      Missing.NOT_BREACHING,
      'A segment message failed 3 times and went to the dead-letter queue; its Map item fails at its ' +
        'heartbeat timeout. Read the worker logs, fix the cause, then redrive the execution.',
    );
    this.executionsFailed = atLeastOne(
      'ExecutionsFailedAlarm',
      workflow.stateMachine.metricFailed({ period: minute }),
      Missing.NOT_BREACHING,
      'A backfill execution failed; the stream updater stays paused until it completes. Fix the cause, ' +
        'then redrive it: aws stepfunctions redrive-execution --execution-arn <execution ARN> (docs/deploy.md).',
    );

    if (props.alarmTopic) {
      const action = new SnsAction(props.alarmTopic);
      for (const alarm of this.all()) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Every alarm, for a dashboard or an action. */
  all(): Alarm[] {
    return [
      this.updaterPaused,
      this.updaterProblem,
      this.iteratorAge,
      ...(this.streamFailures ? [this.streamFailures] : []),
      ...(this.changeQueueDeadLetters ? [this.changeQueueDeadLetters] : []),
      this.updaterErrors,
      this.streamDeadLetters,
      this.segmentDeadLetters,
      this.executionsFailed,
    ];
  }
}
