import { createHash } from 'node:crypto';
import { ArnFormat, CustomResource, Duration, Lazy, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { type CfnEventSourceMapping, EventSourceMapping, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { ENV } from '../pipeline/contract/env';
import { TABLE_DIMENSION, WATCHDOG_METRICS } from '../pipeline/contract/metrics';
import { HandlerFunction, METRICS_NAMESPACE, SERVICE_NAME } from './handler-function';

/** How often the watchdog checks the updater. */
export const WATCHDOG_INTERVAL = Duration.minutes(5);

export interface UpdaterWatchdogProps {
  /** The source table (the run lock is per table; its name is the metrics' `table` dimension). */
  readonly table: ITable;
  /** The updater, whose stream event source mapping the watchdog watches. */
  readonly updaterFunction: IFunction;
  /** The progress table, which holds the run lock. */
  readonly progressTable: ITable;
  /** The backfill state machine's name: the lock holder's execution is one of its executions. */
  readonly stateMachineName: string;
  /** What happens to the two functions' log groups when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Keeps a paused updater from going unnoticed, and deploys from pausing it.
 *
 * - The watchdog function, every 5 minutes (an EventBridge rule: a fixed rate
 *   is all it needs, and a rule invokes the function through its resource
 *   policy, with no role of its own as EventBridge Scheduler would need),
 *   publishes UpdaterPausedOutsideBackfill and UpdaterProblem
 *   (pipeline/watchdog/watchdog.ts).
 * - The deploy guard, a custom resource that depends on the mapping and
 *   carries a hash of the mapping's CloudFormation properties: CloudFormation
 *   updates the mapping (and sends `Enabled: false` again) exactly when those
 *   properties change, so the guard runs after each such update, and on
 *   create, and puts the updater back (pipeline/watchdog/deploy-guard.ts). A
 *   value that changed on every synth would run it on every deploy too, but
 *   would make every synth differ and every `cdk diff` show a change.
 */
export class UpdaterWatchdog extends Construct {
  readonly watchdogFunction: HandlerFunction;
  readonly deployGuardFunction: HandlerFunction;
  /** The rule that runs the watchdog every 5 minutes. */
  readonly schedule: Rule;
  /** Runs the deploy guard after every create and update of the mapping. */
  readonly deployGuard: CustomResource;
  /** CDK's custom resource provider in front of the deploy guard. */
  readonly deployGuardProvider: Provider;
  /** 1 when the updater is paused outside a backfill (Maximum over two watchdog runs); no data point when the watchdog fails. */
  readonly pausedOutsideBackfill: Metric;
  /** 1 when the mapping's last processing result says PROBLEM (Maximum over two watchdog runs). */
  readonly updaterProblem: Metric;

  constructor(scope: Construct, id: string, props: UpdaterWatchdogProps) {
    super(scope, id);
    const mapping = updaterMapping(props.updaterFunction);
    const environment = {
      [ENV.TABLE_NAME]: props.table.tableName,
      [ENV.PROGRESS_TABLE]: props.progressTable.tableName,
      [ENV.UPDATER_MAPPING_UUID]: mapping.eventSourceMappingId,
    };
    this.watchdogFunction = new HandlerFunction(this, 'WatchdogFunction', {
      handlerName: 'watchdog',
      description: 'ddb2os: checks every 5 minutes that the stream updater runs whenever no backfill does',
      memorySize: 256,
      logRemovalPolicy: props.removalPolicy,
      environment,
    });
    this.deployGuardFunction = new HandlerFunction(this, 'DeployGuardFunction', {
      handlerName: 'deploy-guard',
      description: 'ddb2os: resumes the stream updater after a deploy that paused it outside a backfill',
      // It waits up to 2 minutes for a mapping that the deploy is still updating.
      timeout: Duration.minutes(3),
      memorySize: 256,
      logRemovalPolicy: props.removalPolicy,
      environment,
    });
    this.grant(props, mapping, this.watchdogFunction, ['lambda:GetEventSourceMapping']);
    this.grant(props, mapping, this.deployGuardFunction, [
      'lambda:GetEventSourceMapping',
      'lambda:UpdateEventSourceMapping',
    ]);

    this.schedule = new Rule(this, 'Schedule', {
      description: 'ddb2os: runs the updater watchdog',
      schedule: Schedule.rate(WATCHDOG_INTERVAL),
      targets: [new LambdaFunction(this.watchdogFunction)],
    });

    // Like every ddb2os function, the provider's own function writes to its own log group only
    // (instead of the AWS managed AWSLambdaBasicExecutionRole, which allows every log group).
    const providerLogs = new LogGroup(this, 'DeployGuardProviderLogs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy,
    });
    const providerRole = new Role(this, 'DeployGuardProviderRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'ddb2os: the custom resource provider that invokes the deploy guard',
    });
    providerLogs.grantWrite(providerRole);
    this.deployGuardProvider = new Provider(this, 'DeployGuardProvider', {
      onEventHandler: this.deployGuardFunction,
      logGroup: providerLogs,
      frameworkOnEventRole: providerRole,
    });
    const cfnMapping = mapping.node.defaultChild as CfnEventSourceMapping;
    this.deployGuard = new CustomResource(this, 'DeployGuard', {
      serviceToken: this.deployGuardProvider.serviceToken,
      resourceType: 'Custom::Ddb2osUpdaterDeployGuard',
      properties: {
        // A Ref to the mapping: CloudFormation creates and updates the mapping first.
        UpdaterMappingUuid: mapping.eventSourceMappingId,
        UpdaterMappingPropertiesHash: Lazy.string({ produce: () => propertiesHash(cfnMapping) }),
      },
    });

    const watchdogMetric = (metricName: string) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: SERVICE_NAME, [TABLE_DIMENSION]: props.table.tableName },
        statistic: 'Maximum',
        // Two watchdog runs: one late or lost run alone leaves no period without a data point.
        period: Duration.minutes(WATCHDOG_INTERVAL.toMinutes() * 2),
      });
    this.pausedOutsideBackfill = watchdogMetric(WATCHDOG_METRICS.updaterPausedOutsideBackfill);
    this.updaterProblem = watchdogMetric(WATCHDOG_METRICS.updaterProblem);
  }

  /** Read the mapping (and for the guard, update it), the lock item, and the lock holder's execution; nothing else. */
  private grant(
    props: UpdaterWatchdogProps,
    mapping: EventSourceMapping,
    fn: HandlerFunction,
    actions: string[],
  ) {
    fn.addToRolePolicy(new PolicyStatement({ actions, resources: [mapping.eventSourceMappingArn] }));
    props.progressTable.grant(fn, 'dynamodb:GetItem');
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['states:DescribeExecution'],
        resources: [
          Stack.of(this).formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `${props.stateMachineName}:*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
  }
}

/** The stream event source mapping of `updater` (DynamoEventSource hands out only its id and ARN). */
function updaterMapping(updater: IFunction): EventSourceMapping {
  const mappings = updater.node.children.filter((child) => child instanceof EventSourceMapping);
  if (mappings.length !== 1) {
    throw new Error(
      `UpdaterWatchdog: the updater ${updater.node.path} has ${mappings.length} event source mappings; it watches exactly one.`,
    );
  }
  return mappings[0] as EventSourceMapping;
}

/**
 * A hash of the mapping's properties as the template holds them (overrides
 * included): it changes exactly when CloudFormation will update the mapping.
 */
function propertiesHash(mapping: CfnEventSourceMapping): string {
  // _toCloudFormation is how CDK renders a resource into the template; no public API gives the rendered properties.
  const rendered = (
    mapping as unknown as { _toCloudFormation(): { Resources: Record<string, { Properties?: unknown }> } }
  )._toCloudFormation();
  // Resolved first: the overrides (addPropertyOverride) are merged in when the resource resolves.
  const resolved = Stack.of(mapping).resolve(rendered) as {
    Resources: Record<string, { Properties?: unknown }>;
  };
  const properties = Object.values(resolved.Resources).map((resource) => resource.Properties);
  return createHash('sha256').update(JSON.stringify(properties)).digest('hex');
}
