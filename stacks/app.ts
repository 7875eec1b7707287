/**
 * The CDK app: `npx cdk deploy -c demo=true`, or with the existing table and
 * domain as context (see docs/deploy.md). Without credentials (no
 * CDK_DEFAULT_ACCOUNT) the stack stays environment-agnostic.
 */
import { App } from 'aws-cdk-lib';
import { BackfillStack } from './backfill-stack';
import { applyNagChecks } from './nag';

const app = new App();
const account = process.env.CDK_DEFAULT_ACCOUNT;
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'Ddb2osBackfill';

new BackfillStack(app, stackName, {
  env: account ? { account, region: process.env.CDK_DEFAULT_REGION } : undefined,
});
applyNagChecks(app);
