/**
 * Every cdk-nag finding that ddb2os keeps, each with the rule it names and the
 * reason it stays. The grants and settings they answer for are in
 * backfill-workflow.ts (grantHandlers, grantStateMachine) and, for the demo
 * domain, backfill-stack.ts; nag.ts runs the rule packs.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { Role } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { Domain } from 'aws-cdk-lib/aws-opensearchservice';
import { BUCKET_PREFIXES } from '../pipeline/contract/bucket';
import type { BackfillWorkflow } from './backfill-workflow';
import { acknowledge, wildcardResourceFinding } from './nag';
import type { UpdaterWatchdog } from './updater-watchdog';

/**
 * The workflow's findings: runtimes, dead-letter queues, and the wildcard
 * resources that its grants cannot avoid. `domainArn` and `stateMachineName`
 * are the resolved ones its grants name.
 */
export function acknowledgeWorkflowFindings(
  workflow: BackfillWorkflow,
  domainArn: string,
  stateMachineName: string,
): void {
  const functions = [
    workflow.planFunction,
    workflow.workerFunction,
    workflow.updaterFunction,
    workflow.summarizeFunction,
    workflow.runLockFunction,
    workflow.resyncFunction,
    workflow.watchdog.watchdogFunction,
    workflow.watchdog.deployGuardFunction,
  ];
  for (const fn of functions) {
    acknowledge(
      fn,
      ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion'],
      'Node.js 22 is the runtime the handlers are built (esbuild target node22) and tested for; ' +
        'moving to a newer runtime is a deliberate change, not a drift.',
    );
    acknowledge(
      fn,
      ['Serverless-LambdaDLQ'],
      'Plan, summarize, run-lock and resync are invoked synchronously by Step Functions, the worker by an SQS event source ' +
        '(its queue has a dead-letter queue), the updater by a stream event source (with an on-failure ' +
        'destination), the deploy guard synchronously by its custom resource provider. The watchdog is ' +
        'invoked asynchronously by a schedule: a lost invocation is a missing data point, which its alarm ' +
        'counts as breaching, and the next run comes 5 minutes later; a dead-letter queue would add nothing.',
    );
    acknowledge(
      fn.role as Role,
      ['AwsSolutions-IAM5[Resource::*]'],
      'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.' +
        (fn === workflow.workerFunction
          ? ' states:SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat take a task token, not a resource, ' +
            'so IAM only accepts "*" for them.'
          : '') +
        (fn === workflow.updaterFunction
          ? ' dynamodb:ListStreams (granted by the stream event source) supports no resource-level permissions.'
          : '') +
        (fn === workflow.runLockFunction
          ? " cloudwatch:GetMetricStatistics (the updater's IteratorAge) supports no resource-level permissions."
          : ''),
    );
  }
  acknowledge(
    workflow.runLockFunction.role as Role,
    [
      wildcardResourceFinding(
        workflow,
        Stack.of(workflow).formatArn({
          service: 'states',
          resource: 'execution',
          resourceName: `${stateMachineName}:*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    ],
    'execution:<name>:*: the run lock names the execution that holds it, which gets a name at start; ' +
      'DescribeExecution only, to tell whether it still runs.',
  );
  const opensearchIndexes = wildcardResourceFinding(workflow, `${domainArn}/*`);
  const deadLetters = wildcardResourceFinding(
    workflow,
    workflow.bucket.arnForObjects(`${BUCKET_PREFIXES.deadLetters}*`),
  );
  const plans = wildcardResourceFinding(workflow, workflow.bucket.arnForObjects(`${BUCKET_PREFIXES.plans}*`));
  const mapResults = wildcardResourceFinding(
    workflow,
    workflow.bucket.arnForObjects(`${BUCKET_PREFIXES.mapResults}*`),
  );
  for (const { function: fn } of workflow.openSearchAccess) {
    acknowledge(
      fn.role as Role,
      [opensearchIndexes],
      'Documents go to the configured index, to the indexes the mapping routes to and to the index a ' +
        'workflow input names, which are data, not infrastructure, and _bulk is a domain-level path: access is ' +
        'limited to the HTTP methods this function uses (OPENSEARCH_ACTIONS) on this one domain.' +
        (fn === workflow.resyncFunction
          ? ' A resync creates <index>-<runId> indexes whose names exist only at run time, and _aliases is a ' +
            'domain-level path.'
          : ''),
    );
  }
  for (const fn of [workflow.workerFunction, workflow.updaterFunction]) {
    acknowledge(
      fn.role as Role,
      [deadLetters],
      'Dead-letter objects get one new key per batch (runId/segment/timestamp); PutObject only, only under dead-letter/.',
    );
  }
  acknowledge(
    workflow.planFunction.role as Role,
    [plans],
    'The planner writes one segment list per run under plans/; PutObject only, only under that prefix.',
  );
  acknowledge(
    workflow.stateMachine.role,
    [
      'AwsSolutions-IAM5[Resource::*]',
      plans,
      mapResults,
      wildcardResourceFinding(
        workflow,
        Stack.of(workflow).formatArn({
          service: 'states',
          resource: 'execution',
          resourceName: `${stateMachineName}/*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    ],
    'Resource "*": CloudWatch Logs delivery and X-Ray APIs support no resource-level permissions. ' +
      'plans/*: the Map item reader reads the list the planner wrote for this run. map-results/*: the Map ' +
      'result writer creates one object set per Map Run. execution:<name>/*: the Distributed Map child ' +
      'executions of this state machine get generated names; they are described, stopped and redriven.',
  );
  acknowledge(
    workflow.bucket,
    ['AwsSolutions-S1'],
    'The bucket holds transient workflow objects (segment lists, Map results, dead letters) that only this ' +
      "stack's roles write, all expiring by lifecycle rules; CloudTrail data events can audit object access " +
      'where required, without a second bucket for access logs.',
  );
  acknowledge(
    workflow.streamFailureQueue,
    ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy'],
    "This queue is itself a dead-letter destination: the updater's stream event source sends the batches it " +
      'gave up on here. Nothing consumes it automatically, so it needs no dead-letter queue of its own.',
  );
  acknowledge(
    workflow.segmentDeadLetterQueue,
    ['Serverless-SQSRedrivePolicy'],
    'This is the dead-letter queue of the segment queue; a dead-letter queue of a dead-letter queue would add nothing.',
  );
  acknowledge(
    workflow.workerFunction,
    ['Serverless-LambdaEventSourceMappingDestination'],
    'SQS event source mappings do not support on-failure destinations; the segment queue sends messages ' +
      'that fail 3 times to its dead-letter queue instead.',
  );
}

/** The demo domain's findings: one node, no VPC, short-lived, on purpose. */
export function acknowledgeDemoDomainFindings(domain: Domain): void {
  acknowledge(
    domain,
    ['AwsSolutions-OS1'],
    'Demo domain without a VPC so that it can be reached without network setup; access is by IAM ' +
      'signature only (a resource policy naming the stack roles), over HTTPS with TLS 1.2.',
  );
  acknowledge(
    domain,
    ['AwsSolutions-OS3'],
    'Access is granted to IAM principals (the plan, worker, updater, summarize and resync roles), not to IP addresses: Lambda has no fixed IPs.',
  );
  acknowledge(
    domain,
    ['AwsSolutions-OS4', 'AwsSolutions-OS7'],
    'A one-node demo domain: dedicated master nodes and zone awareness would triple its cost; ' +
      'an existing production domain is used in the non-demo mode.',
  );
  acknowledge(
    domain,
    ['AwsSolutions-OS9[LogExport::SEARCH_SLOW_LOGS]', 'AwsSolutions-OS9[LogExport::INDEX_SLOW_LOGS]'],
    'Publishing slow logs needs a CloudWatch Logs resource policy set by a custom resource; the demo ' +
      'domain is short-lived and the handlers log every rejected request themselves.',
  );
}

/** The updater watchdog's findings: its two functions, and the custom resource provider CDK builds. */
export function acknowledgeWatchdogFindings(watchdog: UpdaterWatchdog, stateMachineName: string): void {
  const executions = wildcardResourceFinding(
    watchdog,
    Stack.of(watchdog).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    }),
  );
  for (const fn of [watchdog.watchdogFunction, watchdog.deployGuardFunction]) {
    acknowledge(
      fn.role as Role,
      [executions],
      "execution:<state machine>:*: the run lock names the holder's execution, whose name each run chooses; " +
        'DescribeExecution only, only on executions of this state machine.',
    );
  }
  acknowledge(
    watchdog.schedule,
    ['Serverless-EventBusDLQ'],
    'The rule runs the watchdog every 5 minutes: an invocation it fails to deliver is a missing data ' +
      'point, which the UpdaterPausedOutsideBackfill alarm counts as breaching, and the next one comes 5 minutes later.',
  );
  const framework = watchdog.deployGuardProvider.node.findChild('framework-onEvent');
  acknowledge(
    framework,
    ['Serverless-LambdaDLQ', 'Serverless-LambdaDefaultMemorySize', 'Serverless-LambdaTracing'],
    "CDK's custom resource provider function: CloudFormation invokes it once per stack operation and " +
      'waits for its answer (a failure fails that operation, a dead-letter queue would hold nothing anyone ' +
      'acts on); CDK sets its code, memory and runtime. The deploy guard it invokes is traced.',
  );
  acknowledge(
    (framework as LambdaFunction).role as Role,
    [wildcardResourceFinding(watchdog, `${watchdog.deployGuardFunction.functionArn}:*`)],
    'CDK grants the provider function lambda:InvokeFunction on the deploy guard and its versions ' +
      '(ARN:*); no other function.',
  );
}
