/**
 * The props of the BackfillWorkflow construct, their defaults and their
 * checks. Every check runs at synth, before any function is bundled, so a bad
 * prop fails fast with a message that names it.
 */

import { CfnResource, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import type { CfnTable, ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IDomain } from 'aws-cdk-lib/aws-opensearchservice';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { UPDATER_MAX_RECORD_AGE_HOURS } from '../pipeline/apply/failed-batches';
import { indexNameProblem } from '../pipeline/contract/index-name';
import { type IndexDefinition, readIndexDefinition } from '../pipeline/index/index-definition';
import { type ChangeSource, type ChangeSourceProps, resolveChangeSource } from './change-source';
import { checkTransformModule, type TransformModule } from './transform-bundle';

/** What BackfillWorkflow syncs (table, domain, index, mapping) and how it runs; checked at synth. */
export interface BackfillWorkflowProps extends ChangeSourceProps {
  /**
   * The DynamoDB table to backfill and follow. With the default
   * `changeSource` it must have a stream (NEW_IMAGE or NEW_AND_OLD_IMAGES);
   * for an imported table pass `tableStreamArn` to `Table.fromTableAttributes`.
   */
  readonly table: ITable;
  /**
   * The OpenSearch Service domain to write to. Give either this or
   * `domainEndpoint` and `domainArn`.
   * @default - `domainEndpoint` and `domainArn`
   */
  readonly domain?: IDomain;
  /**
   * The domain endpoint, an `https://` URL. Only without `domain`.
   * @default - from `domain`
   */
  readonly domainEndpoint?: string;
  /**
   * The domain ARN (`arn:aws:es:region:account:domain/name`), for IAM. Only without `domain`.
   * @default - from `domain`
   */
  readonly domainArn?: string;
  /**
   * The OpenSearch index (or alias) that documents go to. Lowercase; none of
   * `\ / * ? " < > | , #` or spaces; not starting with `_`, `-` or `+`.
   */
  readonly index: string;
  /**
   * Mapping configuration (routes, aggregation; see docs/mapping.md), passed
   * to the worker and the updater as JSON in DDB2OS_MAPPING.
   * @default - one document per item in `index`
   */
  readonly mapping?: Record<string, unknown>;
  /**
   * Path of a JavaScript or TypeScript module whose default export (or export
   * named `transform`) is the mapping's transform hook (docs/mapping.md),
   * resolved against the working directory at synth. The module and what it
   * imports are bundled into the worker and the updater, the functions that
   * map items. Cannot be combined with `mapping.routes`, `unrouted` or `aggregate`.
   * @default - no transform: the built-in mapping
   */
  readonly transformModule?: string;
  /**
   * Your own index definition: the body of `PUT /<index>` (`settings`,
   * `mappings`) or an index template (its `template.settings` and
   * `template.mappings`), as parsed JSON. The plan step applies it when it
   * creates a missing index, over ddb2os's defaults (see docs/mapping.md,
   * "Your own index definition"); an index that exists is used as it is. It
   * travels in the state machine definition, not in an environment variable
   * (Lambda allows 4 KB of those in all). At most 128 KiB as compact JSON;
   * `aliases` are refused.
   * @default - ddb2os's index defaults
   */
  readonly indexConfig?: Record<string, unknown>;
  /**
   * Segments processed at the same time (the Map's MaxConcurrency), unless the
   * execution input says otherwise. 1 to 10,000.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * Most worker Lambdas running at once (the SQS event source's maximum
   * concurrency). 2 to 1,000, and at least maxConcurrency (checked at synth
   * and at each start): segments beyond it would wait in the queue until their
   * heartbeats time out.
   * @default - maxConcurrency, at least 2
   */
  readonly workerMaxConcurrency?: number;
  /**
   * Timeout of one worker invocation. A segment that takes longer is handed on
   * to a new invocation. 1 to 15 minutes.
   * @default Duration.minutes(15)
   */
  readonly workerTimeout?: Duration;
  /**
   * How long a segment may go without a heartbeat from its worker before the
   * Map item fails (and is retried). At least 30 seconds, less than `segmentTimeout`.
   * @default Duration.minutes(5)
   */
  readonly heartbeat?: Duration;
  /**
   * How long one attempt at a segment may take in all.
   * @default Duration.hours(6)
   */
  readonly segmentTimeout?: Duration;
  /**
   * The oldest a change the updater has not applied may be, plus the time
   * estimated to drain the backlog, when a backfill ends and would enable the
   * updater (see pipeline/summarize/retention-clock.ts). Must be less than the
   * change source's retention, with room to spare (the DynamoDB stream's 24
   * hours; a Kinesis stream's or a queue's retention is read at each start),
   * and less than `updaterMaxRecordAge`.
   * @default Duration.hours(20)
   */
  readonly retentionBudget?: Duration;
  /**
   * How old a stream record may grow while the updater retries its batch
   * (OpenSearch or DynamoDB unavailable) before the event source mapping
   * gives up on the batch and sends its on-failure record to the stream
   * failure queue. From 1 to 24 hours (7 days for a Kinesis stream), and more
   * than `retentionBudget` (after a backfill the updater resumes with changes
   * as old as the backfill). Keep it below the stream's retention so that
   * `ddb2os replay` can still re-read the records from the stream. Not for
   * an SQS source, whose queue's redrive policy ends the retries.
   * @default Duration.hours(22)
   */
  readonly updaterMaxRecordAge?: Duration;
  /**
   * Table bytes per segment that the planner aims for (DDB2OS_TARGET_SEGMENT_BYTES).
   * @default - the planner's default (256 MiB)
   */
  readonly targetSegmentBytes?: number;
  /**
   * Upper bound of one bulk request body in bytes (DDB2OS_BULK_MAX_BYTES). At most 100 MiB;
   * small instance types accept only 10 MiB.
   * @default - the handlers' default (5 MiB)
   */
  readonly bulkMaxBytes?: number;
  /**
   * What happens to the progress table, the workflow bucket and the log groups
   * when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The state machine's name. It is fixed at synth time because the state
   * machine's own policy names it (a Distributed Map starts child executions of itself).
   * @default - derived from the construct path
   */
  readonly stateMachineName?: string;
  /**
   * The SNS topic every alarm notifies, when it goes into ALARM and when it is
   * OK again (docs/deploy.md, "Alarms", lists them).
   * @default - alarms without actions
   */
  readonly alarmTopic?: ITopic;
  /**
   * The updater's iterator age (for an SQS source, the age of the oldest
   * message in the change queue) above which its alarm fires (5 minutes in a
   * row). More than 0 and less than the source's retention (24 hours for the
   * DynamoDB stream).
   * @default Duration.hours(1)
   */
  readonly iteratorAgeAlarmThreshold?: Duration;
  /**
   * The VPC of a VPC-only domain. The functions that call OpenSearch (plan,
   * worker, updater, summarize) run in it; the others call only AWS APIs and
   * stay outside. From its subnets the functions must reach DynamoDB, S3, SQS,
   * Step Functions and X-Ray: through a NAT gateway or VPC endpoints (the
   * README's "Add to your CDK app" lists them).
   * @default - the functions run outside any VPC: for a domain with a public endpoint
   */
  readonly vpc?: IVpc;
  /**
   * The subnets of `vpc` the functions that call OpenSearch run in. Only with `vpc`.
   * @default - the VPC's private subnets with egress (CDK's default for a Lambda function)
   */
  readonly vpcSubnets?: SubnetSelection;
  /**
   * The security groups of the functions that call OpenSearch. Only with
   * `vpc`, and at least one. The domain's security group must let them in on
   * HTTPS (443); the construct adds that rule itself when `domain` is a
   * `Domain` construct in a VPC.
   * @default - one new security group that allows all outbound traffic and no inbound
   */
  readonly securityGroups?: ISecurityGroup[];
  /**
   * The customer managed KMS key that the table (and so its stream) is
   * encrypted with. The worker (it scans the table) and the updater (it reads
   * the stream and single items) get `kms:Decrypt` on it. Needed only for an
   * imported table whose `Table.fromTableAttributes` was not given its
   * `encryptionKey`; refused for a table of this app encrypted with an AWS
   * owned or AWS managed key, which needs no grant.
   * @default - the table's own `encryptionKey`, if it has one; else no key grant
   */
  readonly tableEncryptionKey?: IKey;
  /**
   * Whether the construct adds its functions' roles to the domain's access
   * policy, each with exactly the HTTP methods it uses (`openSearchAccess`).
   * Only with `domain` as a `Domain` construct of this app: CDK merges the
   * statements with the domain's own `accessPolicies` (through a custom
   * resource that calls UpdateDomainConfig). Off by default because the policy
   * is the domain owner's, and a domain with fine-grained access control also
   * needs the roles mapped to an OpenSearch role, which only its owner can do;
   * `domainAccessPolicyStatements()` gives the statements to add yourself.
   * @default false
   */
  readonly addDomainAccessPolicy?: boolean;
}

/** The props after checking, with every default filled in: what the construct builds from. */
export interface WorkflowSettings {
  domainEndpoint: string;
  domainArn: string;
  removalPolicy: RemovalPolicy;
  stateMachineName: string;
  maxConcurrency: number;
  workerMaxConcurrency: number;
  workerTimeout: Duration;
  heartbeat: Duration;
  segmentTimeout: Duration;
  retentionBudget: Duration;
  updaterMaxRecordAge: Duration;
  iteratorAgeAlarmThreshold: Duration;
  transformModule?: TransformModule;
  indexConfig?: IndexDefinition;
  /** The key whose kms:Decrypt the functions reading the table need; none for an AWS owned or managed key. */
  tableEncryptionKey?: IKey;
  changeSource: ChangeSource;
}

/**
 * Checks the props and fills in the defaults; every message names the prop and
 * what it must be. `scope` is the workflow, whose path names the state machine
 * when no name is given.
 */
export function resolveWorkflowSettings(scope: Construct, props: BackfillWorkflowProps): WorkflowSettings {
  const changeSource = resolveChangeSource(props);
  refuseConcurrentBatchesOfMergedDocuments(props, changeSource);
  const { limits } = changeSource;
  const { domainEndpoint, domainArn } = resolveDomain(props);
  checkNetwork(props);
  checkDomainAccessPolicy(scope, props);
  const tableEncryptionKey = resolveTableEncryptionKey(props);
  validateIndexName(props.index);
  const mappingIndex = props.mapping?.index;
  if (mappingIndex !== undefined && mappingIndex !== props.index) {
    throw new Error(
      `BackfillWorkflow: mapping.index (${String(mappingIndex)}) differs from index (${props.index}); ` +
        'set the index once, with the index prop.',
    );
  }
  const maxConcurrency = props.maxConcurrency ?? 10;
  requireInteger('maxConcurrency', maxConcurrency, 1, 10_000);
  const workerMaxConcurrency = props.workerMaxConcurrency ?? Math.min(Math.max(maxConcurrency, 2), 1000);
  requireInteger('workerMaxConcurrency', workerMaxConcurrency, 2, 1000);
  if (maxConcurrency > workerMaxConcurrency) {
    // The workflow refuses such a maxConcurrency at start ("Validate and lock"): the default must pass.
    throw new Error(
      `BackfillWorkflow: maxConcurrency (${maxConcurrency}) must be at most workerMaxConcurrency ` +
        `(${workerMaxConcurrency}): segments beyond the workers running at once would wait in the queue ` +
        'without heartbeats until they time out.',
    );
  }

  const workerTimeout = props.workerTimeout ?? Duration.minutes(15);
  requireDuration('workerTimeout', workerTimeout, Duration.minutes(1), Duration.minutes(15));
  const segmentTimeout = props.segmentTimeout ?? Duration.hours(6);
  const heartbeat = props.heartbeat ?? Duration.minutes(5);
  requireDuration('segmentTimeout', segmentTimeout, Duration.minutes(1), Duration.days(7));
  requireDuration('heartbeat', heartbeat, Duration.seconds(30), segmentTimeout);
  if (heartbeat.toSeconds() >= segmentTimeout.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: heartbeat (${heartbeat.toHumanString()}) must be shorter than segmentTimeout ` +
        `(${segmentTimeout.toHumanString()}).`,
    );
  }
  const retentionBudget = props.retentionBudget ?? Duration.hours(20);
  if (retentionBudget.toSeconds() <= 0 || retentionBudget.toSeconds() >= limits.maxRetention.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: retentionBudget (${retentionBudget.toHumanString()}) must be more than 0 and ` +
        `less than ${limits.retention}: the updater can only catch up on changes ` +
        'that are still in the source.',
    );
  }
  const updaterMaxRecordAge = props.updaterMaxRecordAge ?? Duration.hours(UPDATER_MAX_RECORD_AGE_HOURS);
  requireDuration(
    'updaterMaxRecordAge',
    updaterMaxRecordAge,
    Duration.hours(1),
    limits.maxRecordAge ?? Duration.days(7),
  );
  // A queue's mapping has no record age: its redrive policy and retention end the retries.
  if (limits.maxRecordAge && retentionBudget.toSeconds() >= updaterMaxRecordAge.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: retentionBudget (${retentionBudget.toHumanString()}) must be less than ` +
        `updaterMaxRecordAge (${updaterMaxRecordAge.toHumanString()}): after a backfill the updater resumes ` +
        'with changes as old as the backfill, and would give up on those older than updaterMaxRecordAge.',
    );
  }
  const iteratorAgeAlarmThreshold = props.iteratorAgeAlarmThreshold ?? Duration.hours(1);
  const threshold = iteratorAgeAlarmThreshold.toSeconds();
  if (threshold <= 0 || threshold >= limits.maxRetention.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: iteratorAgeAlarmThreshold (${iteratorAgeAlarmThreshold.toHumanString()}) must be more ` +
        `than 0 and less than ${limits.retention}: the source drops changes after that, so the alarm must fire before.`,
    );
  }
  if (props.targetSegmentBytes !== undefined) {
    requireInteger('targetSegmentBytes', props.targetSegmentBytes, 1, Number.MAX_SAFE_INTEGER);
  }
  if (props.bulkMaxBytes !== undefined) {
    requireInteger('bulkMaxBytes', props.bulkMaxBytes, 1, 100 * 1024 * 1024);
  }
  let indexConfig: IndexDefinition | undefined;
  if (props.indexConfig !== undefined) {
    try {
      // The plan step names it so in a refusal; the synth messages name the prop.
      indexConfig = {
        ...readIndexDefinition(props.indexConfig, 'indexConfig'),
        source: "the deployment's indexConfig",
      };
    } catch (error) {
      throw new Error(`BackfillWorkflow: ${(error as Error).message}.`, { cause: error });
    }
  }
  if (props.stateMachineName !== undefined) validateStateMachineName(props.stateMachineName);
  return {
    changeSource,
    indexConfig,
    tableEncryptionKey,
    domainEndpoint,
    domainArn,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    stateMachineName:
      props.stateMachineName ?? Names.uniqueResourceName(scope, { maxLength: 80, separator: '-' }),
    transformModule: resolveTransformModule(props),
    maxConcurrency,
    workerMaxConcurrency,
    workerTimeout,
    heartbeat,
    segmentTimeout,
    retentionBudget,
    updaterMaxRecordAge,
    iteratorAgeAlarmThreshold,
  };
}

/**
 * Concurrent batches of a shard of the table's stream keep each item's changes
 * in order, not a partition's nor a transform's document's: such a document,
 * written from two batches at once, could end at the older state
 * (docs/stream-updater.md, "Concurrent batches of a shard"). A Kinesis source
 * is applied without relying on order, so any factor is safe there.
 */
function refuseConcurrentBatchesOfMergedDocuments(props: BackfillWorkflowProps, source: ChangeSource): void {
  if (source.kind !== 'dynamodb-stream' || source.parallelizationFactor === 1) return;
  const merged = props.mapping?.aggregate
    ? 'mapping.aggregate builds one document from every item of a partition'
    : props.transformModule !== undefined
      ? 'a transformModule may build one document from several items'
      : undefined;
  if (merged === undefined) return;
  throw new Error(
    `BackfillWorkflow: updaterParallelizationFactor ${source.parallelizationFactor} needs documents that each come ` +
      `from one item, and ${merged}: Lambda keeps only each item's changes in order across concurrent batches. ` +
      "Leave it at 1, or follow a Kinesis stream (changeSource: 'kinesis'), which the updater applies without relying on order.",
  );
}

/**
 * The transform hook reaches the functions only as a bundled module: a function
 * in `mapping` would vanish in the JSON of DDB2OS_MAPPING, and a path in it
 * would name a file the deployment package does not hold.
 */
function resolveTransformModule(props: BackfillWorkflowProps): TransformModule | undefined {
  for (const field of ['transform', 'transformModule']) {
    if (props.mapping?.[field] !== undefined) {
      throw new Error(
        `BackfillWorkflow: mapping.${field} cannot reach the deployed functions; give the module's path as ` +
          'the transformModule prop (-c transformModule=PATH), which bundles it into them.',
      );
    }
  }
  if (props.transformModule === undefined) return undefined;
  return checkTransformModule(props.transformModule);
}

function resolveDomain(props: BackfillWorkflowProps): { domainEndpoint: string; domainArn: string } {
  if (props.domain) {
    if (props.domainEndpoint !== undefined || props.domainArn !== undefined) {
      throw new Error('BackfillWorkflow: give either domain, or domainEndpoint and domainArn, not both.');
    }
    return { domainEndpoint: `https://${props.domain.domainEndpoint}`, domainArn: props.domain.domainArn };
  }
  const { domainEndpoint, domainArn } = props;
  if (domainEndpoint === undefined || domainArn === undefined) {
    throw new Error(
      'BackfillWorkflow: give the OpenSearch domain: domain, or both domainEndpoint and domainArn.',
    );
  }
  if (!Token.isUnresolved(domainEndpoint)) {
    let url: URL | undefined;
    try {
      url = new URL(domainEndpoint);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || url.pathname !== '/' || url.search !== '') {
      throw new Error(
        `BackfillWorkflow: domainEndpoint must be the domain's https URL, like ` +
          `https://search-name-abc123.us-east-1.es.amazonaws.com (got ${domainEndpoint}).`,
      );
    }
  }
  if (
    !Token.isUnresolved(domainArn) &&
    !/^arn:aws[a-z-]*:es:[a-z0-9-]+:\d{12}:domain\/[a-z][a-z0-9-]*$/.test(domainArn)
  ) {
    throw new Error(
      `BackfillWorkflow: domainArn must be an OpenSearch domain ARN, like ` +
        `arn:aws:es:us-east-1:123456789012:domain/name (got ${domainArn}).`,
    );
  }
  return { domainEndpoint: domainEndpoint.replace(/\/$/, ''), domainArn };
}

/** A VPC-only domain: the subnets and security groups only mean something inside the VPC they belong to. */
function checkNetwork(props: BackfillWorkflowProps): void {
  if (props.vpc === undefined) {
    for (const name of ['vpcSubnets', 'securityGroups'] as const) {
      if (props[name] !== undefined) {
        throw new Error(
          `BackfillWorkflow: ${name} is given without vpc; give the VPC of the domain as vpc too ` +
            '(or leave out both, for a domain with a public endpoint).',
        );
      }
    }
  }
  if (props.securityGroups?.length === 0) {
    throw new Error(
      'BackfillWorkflow: securityGroups is empty; give at least one security group, or leave it out for a new one.',
    );
  }
}

/** The construct can only add to the policy of a domain it can change: a Domain construct of this app. */
function checkDomainAccessPolicy(scope: Construct, props: BackfillWorkflowProps): void {
  if (props.addDomainAccessPolicy !== true) return;
  if (props.domain === undefined || !('addAccessPolicies' in props.domain)) {
    throw new Error(
      'BackfillWorkflow: addDomainAccessPolicy needs domain to be a Domain construct of this app; an imported ' +
        "domain's policy is its owner's: allow the roles of domainAccessPolicyStatements() there instead.",
    );
  }
  // The policy names the workflow's roles and the functions name the domain's endpoint: across two
  // stacks each would export to the other, a cycle CloudFormation refuses.
  if (Stack.of(props.domain) !== Stack.of(scope)) {
    throw new Error(
      `BackfillWorkflow: addDomainAccessPolicy needs the domain in the workflow's stack (${Stack.of(scope).stackName}), ` +
        `not in ${Stack.of(props.domain).stackName}: the policy would name the workflow's roles and the ` +
        "workflow the domain, a cycle between the stacks. Add domainAccessPolicyStatements() in the domain's stack instead.",
    );
  }
}

/**
 * The table's key: the prop, or the table's own. A table of this app tells
 * its encryption, so a key given for one that has none is a mistake (or the
 * wrong table); an imported table's encryption is unknown until given.
 */
function resolveTableEncryptionKey(props: BackfillWorkflowProps): IKey | undefined {
  const { table, tableEncryptionKey } = props;
  if (tableEncryptionKey === undefined) return table.encryptionKey;
  if (table.encryptionKey !== undefined && table.encryptionKey !== tableEncryptionKey) {
    throw new Error(
      `BackfillWorkflow: tableEncryptionKey differs from the encryptionKey of the table ${table.node.path}; ` +
        "leave tableEncryptionKey out, the table's own key is used.",
    );
  }
  const encryption = knownDefaultEncryption(table);
  if (encryption !== undefined) {
    throw new Error(
      `BackfillWorkflow: tableEncryptionKey is given, but the table ${table.node.path} is encrypted with ` +
        `${encryption} key, which needs no grant; leave tableEncryptionKey out (or encrypt the table with ` +
        'TableEncryption.CUSTOMER_MANAGED and that key).',
    );
  }
  return tableEncryptionKey;
}

/** "an AWS owned" or "an AWS managed" for a table of this app without a customer managed key; undefined when not known. */
function knownDefaultEncryption(table: ITable): string | undefined {
  if (table.encryptionKey !== undefined) return undefined;
  const resource = table.node.defaultChild;
  if (
    !CfnResource.isCfnResource(resource) ||
    !['AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable'].includes(resource.cfnResourceType)
  ) {
    return undefined;
  }
  // Table and TableV2 (CfnTable, CfnGlobalTable) both write SSE as sseSpecification.sseEnabled.
  const sse = Stack.of(table).resolve((resource as CfnTable).sseSpecification) as
    | { sseEnabled?: unknown }
    | undefined;
  if (Token.isUnresolved(sse?.sseEnabled)) return undefined;
  return sse?.sseEnabled === true ? 'an AWS managed' : 'an AWS owned';
}

/** Step Functions' naming rules (letters, digits, - and _ keep the name usable in logs and ARNs), checked at synth. */
function validateStateMachineName(name: string): void {
  if (Token.isUnresolved(name)) return;
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
    throw new Error(
      `BackfillWorkflow: stateMachineName "${name}" is not a valid state machine name: use 1 to 80 ` +
        'letters, digits, - and _.',
    );
  }
}

/** OpenSearch index naming rules, so a bad name fails at synth rather than at the first bulk request. */
function validateIndexName(index: string): void {
  if (Token.isUnresolved(index)) return;
  const problem = index === '' ? 'must not be empty' : indexNameProblem(index);
  if (problem !== undefined) {
    throw new Error(
      `BackfillWorkflow: index "${index}" is not a valid OpenSearch index name: it ${problem}. ` +
        'Use lowercase letters, digits and - _ . (not first).',
    );
  }
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`BackfillWorkflow: ${name} must be a whole number from ${min} to ${max} (got ${value}).`);
  }
}

function requireDuration(name: string, value: Duration, min: Duration, max: Duration): void {
  const seconds = value.toSeconds();
  if (seconds < min.toSeconds() || seconds > max.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: ${name} must be from ${min.toHumanString()} to ${max.toHumanString()} ` +
        `(got ${value.toHumanString()}).`,
    );
  }
}
