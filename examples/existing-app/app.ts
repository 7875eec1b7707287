/**
 * A CDK app that already has a table and an OpenSearch domain, and adds
 * ddb2os's BackfillWorkflow next to them: the README's "Add to your CDK app".
 * cdk-nag's AwsSolutions pack runs at synth; the workflow acknowledges its own
 * findings, and this app acknowledges those of its own domain.
 */
import { App, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, StreamViewType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { EbsDeviceVolumeType } from 'aws-cdk-lib/aws-ec2';
import { Domain, EngineVersion, TLSSecurityPolicy } from 'aws-cdk-lib/aws-opensearchservice';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BackfillWorkflow } from 'ddb2os';

const app = new App();
const stack = new Stack(app, 'ExistingApp');

// What the app already had: a table with a stream, and a domain.
const table = new Table(stack, 'Orders', {
  partitionKey: { name: 'orderId', type: AttributeType.STRING },
  stream: StreamViewType.NEW_AND_OLD_IMAGES, // the updater follows it
  billingMode: BillingMode.PAY_PER_REQUEST,
  pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
});
const domain = new Domain(stack, 'Search', {
  version: EngineVersion.OPENSEARCH_2_19,
  capacity: { dataNodes: 1, dataNodeInstanceType: 't3.small.search', multiAzWithStandbyEnabled: false },
  ebs: { volumeSize: 10, volumeType: EbsDeviceVolumeType.GP3 },
  nodeToNodeEncryption: true,
  encryptionAtRest: { enabled: true },
  enforceHttps: true,
  tlsSecurityPolicy: TLSSecurityPolicy.TLS_1_2,
  removalPolicy: RemovalPolicy.DESTROY,
});

// What ddb2os adds: the backfill workflow and the stream updater. Its functions' roles get exactly
// the HTTP methods they use on this domain (workflow.openSearchAccess lists them).
new BackfillWorkflow(stack, 'OrdersToSearch', {
  table,
  domain,
  index: 'orders',
  // `cdk synth -c transformModule=./order-transform.ts` maps items with your own function; it is
  // bundled into the worker and the updater at synth, which needs esbuild in this app.
  transformModule: app.node.tryGetContext('transformModule'),
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
Validations.of(domain).acknowledge(
  {
    id: 'AwsSolutions-OS1',
    reason: 'Example domain outside a VPC; access is by IAM (signed requests) only.',
  },
  { id: 'AwsSolutions-OS3', reason: 'Example domain: IAM, not an IP allow list, decides who gets in.' },
  { id: 'AwsSolutions-OS4', reason: 'Example domain: one data node, no dedicated master nodes.' },
  {
    id: 'AwsSolutions-OS5',
    reason: 'Example domain: no access policy; only IAM principals with grants reach it.',
  },
  { id: 'AwsSolutions-OS7', reason: 'Example domain: one node, no zone awareness.' },
  ...['SEARCH_SLOW_LOGS', 'INDEX_SLOW_LOGS'].map((logs) => ({
    id: `AwsSolutions-OS9[LogExport::${logs}]`,
    reason: 'Example domain: slow logs are not needed to try ddb2os.',
  })),
);
app.synth();
