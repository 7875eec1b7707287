/**
 * The cloud side of a resync in the template: the resync function, its grants,
 * what the updater needs to read the resync state, and the values the
 * definition's resync states get.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { readResyncConfig, readUpdaterConfig } from '../../pipeline/lambda/config';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import { DOMAIN_ARN, DOMAIN_ENDPOINT, stackWithStreamTable, unacknowledgedNagFindings } from './fixtures';

function synth(props: Partial<BackfillWorkflowProps> = {}) {
  const { stack, table } = stackWithStreamTable();
  const workflow = new BackfillWorkflow(stack, 'Workflow', {
    table,
    index: 'orders',
    domainEndpoint: DOMAIN_ENDPOINT,
    domainArn: DOMAIN_ARN,
    mapping: { routes: [{ prefix: 'audit#', index: 'audit' }] },
    ...props,
  });
  return { stack, workflow, template: Template.fromStack(stack) };
}

describe('the resync function', () => {
  let stack: Stack;
  let workflow: BackfillWorkflow;
  let template: Template;
  const arnOf = (construct: { node: { defaultChild?: unknown } }) => ({
    'Fn::GetAtt': [stack.getLogicalId(construct.node.defaultChild as never), 'Arn'],
  });
  const roleRef = (fn: { role?: { node: { defaultChild?: unknown } } }) => ({
    Ref: stack.getLogicalId(fn.role?.node.defaultChild as never),
  });
  /** A function's environment, tokens replaced by stand-in strings. */
  const environment = (fn: { role?: { node: { defaultChild?: unknown } } }) => {
    const [resource] = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: { Role: { 'Fn::GetAtt': [roleRef(fn).Ref, 'Arn'] } },
      }),
    );
    return Object.fromEntries(
      Object.entries(resource?.Properties.Environment.Variables as Record<string, unknown>).map(
        ([name, value]) => [name, typeof value === 'string' ? value : `<${name}>`],
      ),
    );
  };

  beforeAll(() => {
    ({ stack, workflow, template } = synth());
  });

  it('is told the table, the progress table, the domain and the indices the mapping writes', () => {
    expect(readResyncConfig(environment(workflow.resyncFunction))).toMatchObject({
      table: 'orders',
      progressTable: '<DDB2OS_PROGRESS_TABLE>',
      index: 'orders',
      endpoint: DOMAIN_ENDPOINT,
      signing: 'es',
      mapping: '{"routes":[{"prefix":"audit#","index":"audit"}]}',
    });
  });

  /** The resync function's role has a policy with this statement. */
  const resyncRoleAllows = (statement: Record<string, unknown>) =>
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [roleRef(workflow.resyncFunction)],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike(statement)]) },
    });

  it('may read, put, update and delete items of the progress table (the resync state), nothing else there', () => {
    resyncRoleAllows({
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      Resource: Match.arrayWith([arnOf(workflow.progressTable)]),
    });
  });

  it('may create and delete indices, move aliases and search on this domain only', () => {
    resyncRoleAllows({
      Action: ['es:ESHttpHead', 'es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost', 'es:ESHttpDelete'],
      Resource: `${DOMAIN_ARN}/*`,
    });
    expect(workflow.openSearchAccess.map((access) => access.function)).toContain(workflow.resyncFunction);
  });

  it('is what the definition invokes for the resync steps', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      DefinitionSubstitutions: Match.objectLike({ ResyncFunctionArn: arnOf(workflow.resyncFunction) }),
    });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('the updater during a resync', () => {
  it('is told the progress table, where it reads the resync state before each batch', () => {
    const { stack, workflow, template } = synth();
    const [updater] = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Role: {
            'Fn::GetAtt': [
              stack.getLogicalId(workflow.updaterFunction.role?.node.defaultChild as never),
              'Arn',
            ],
          },
        },
      }),
    );
    const variables = updater?.Properties.Environment.Variables as Record<string, unknown>;
    expect(variables.DDB2OS_PROGRESS_TABLE).toEqual({
      Ref: stack.getLogicalId(workflow.progressTable.node.defaultChild as never),
    });
    const standIns = Object.fromEntries(
      Object.entries(variables).map(([name, value]) => [
        name,
        typeof value === 'string' ? value : `<${name}>`,
      ]),
    );
    expect(readUpdaterConfig(standIns).progressTable).toBe('<DDB2OS_PROGRESS_TABLE>');
  });

  it('may read one item of the progress table, and write none', () => {
    const { stack, workflow, template } = synth();
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: stack.getLogicalId(workflow.updaterFunction.role?.node.defaultChild as never) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'dynamodb:GetItem',
            Resource: Match.arrayWith([
              {
                'Fn::GetAtt': [stack.getLogicalId(workflow.progressTable.node.defaultChild as never), 'Arn'],
              },
            ]),
          }),
        ]),
      },
    });
  });
});

describe('the wait before the tombstones go', () => {
  const drainSeconds = (template: Template) => {
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    return machine?.Properties.DefinitionSubstitutions.ResyncDrainSeconds;
  };

  it("is the worker's timeout when it is the longer (15 minutes by default)", () => {
    expect(drainSeconds(synth().template)).toBe('900');
  });

  it("is the updater's timeout (5 minutes) when the worker's is shorter", () => {
    expect(drainSeconds(synth({ workerTimeout: Duration.minutes(2) }).template)).toBe('300');
  });
});
