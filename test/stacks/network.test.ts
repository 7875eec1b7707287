import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Port, SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Domain, EngineVersion } from 'aws-cdk-lib/aws-opensearchservice';
import { beforeAll, describe, expect, it } from 'vitest';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import {
  DOMAIN_ARN,
  DOMAIN_ENDPOINT,
  importedStreamTable,
  stackWithStreamTable,
  testApp,
  unacknowledgedNagFindings,
  workflowBuilder,
} from './fixtures';

/** What a user's app already has: a table with a stream, a VPC, and a domain in it. */
function vpcApp(): { stack: Stack; table: ITable; vpc: Vpc; domain: Domain } {
  const { stack, table } = stackWithStreamTable();
  const vpc = new Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED }],
  });
  const domain = new Domain(stack, 'Domain', {
    version: EngineVersion.OPENSEARCH_2_19,
    vpc,
    vpcSubnets: [{ subnets: vpc.isolatedSubnets.slice(0, 1) }],
    zoneAwareness: { enabled: false },
  });
  return { stack, table, vpc, domain };
}

/** The functions of the template by their description's start ("ddb2os: scans" is the worker). */
function functionsOf(template: Template): Map<string, Record<string, unknown>> {
  return new Map(
    Object.values(template.findResources('AWS::Lambda::Function'))
      .filter((fn) => String(fn.Properties.Description).startsWith('ddb2os:'))
      .map((fn) => [String(fn.Properties.Description), fn.Properties]),
  );
}

const ISOLATED = { subnetType: SubnetType.PRIVATE_ISOLATED };

describe('BackfillWorkflow in a VPC', () => {
  let stack: Stack;
  let workflow: BackfillWorkflow;
  let template: Template;
  let vpc: Vpc;

  beforeAll(() => {
    const app = vpcApp();
    stack = app.stack;
    vpc = app.vpc;
    workflow = new BackfillWorkflow(stack, 'Workflow', {
      table: app.table,
      domain: app.domain,
      index: 'orders',
      vpc,
      vpcSubnets: ISOLATED,
    });
    template = Template.fromStack(stack);
  });

  it('runs every function that calls OpenSearch in the given subnets, and the others outside the VPC', () => {
    const callers = new Set(
      workflow.openSearchAccess.map(({ function: fn }) => (fn.node.defaultChild as CfnFunction).description),
    );
    const inVpc = [...functionsOf(template)]
      .filter(([, fn]) => fn.VpcConfig !== undefined)
      .map(([description]) => description);
    expect(new Set(inVpc)).toEqual(callers);
    // plan, worker, updater, summarize, resync
    expect(callers.size).toBe(5);
    const subnetIds = vpc.isolatedSubnets.map((subnet) => stack.resolve(subnet.subnetId));
    for (const description of callers) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: description,
        VpcConfig: { SubnetIds: subnetIds, SecurityGroupIds: Match.anyValue() },
      });
    }
  });

  it('gives them one new security group that takes no inbound traffic', () => {
    const groups = template.findResources('AWS::EC2::SecurityGroup', {
      Properties: { GroupDescription: Match.stringLikeRegexp('^ddb2os: the functions that call OpenSearch') },
    });
    expect(Object.keys(groups)).toHaveLength(1);
    const [group] = Object.values(groups);
    expect(group?.Properties.SecurityGroupIngress).toBeUndefined();
    expect(workflow.connections.securityGroups).toHaveLength(1);
  });

  it("lets that security group into the domain's security group on HTTPS (443) only", () => {
    const [clientGroup] = workflow.connections.securityGroups;
    const rules = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'));
    expect(rules.map((rule) => rule.Properties)).toEqual([
      expect.objectContaining({
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: stack.resolve(clientGroup?.securityGroupId),
        GroupId: { 'Fn::GetAtt': [expect.stringMatching(/^DomainSecurityGroup/), 'GroupId'] },
      }),
    ]);
  });

  it('lets Lambda attach the functions to the VPC through a policy inside their roles, which the functions wait for', () => {
    for (const { function: fn } of workflow.openSearchAccess) {
      template.hasResourceProperties('AWS::IAM::Role', {
        Description: (fn.node.defaultChild as CfnFunction).description,
        Policies: [
          {
            PolicyName: 'NetworkInterfaces',
            PolicyDocument: {
              Statement: [
                Match.objectLike({
                  Action: Match.arrayWith(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']),
                  Resource: '*',
                }),
              ],
            },
          },
        ],
      });
    }
    template.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('^ddb2os: validates'),
      Policies: Match.absent(),
    });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding of its own unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack).filter((finding) => finding.includes('/Workflow/'))).toEqual([]);
  });
});

describe('BackfillWorkflow in a VPC, with the domain in another stack', () => {
  it("puts the ingress rule in the workflow's stack, so that only the workflow's stack depends on the domain's", () => {
    const app = testApp();
    const search = new Stack(app, 'Search');
    const vpc = new Vpc(search, 'Vpc', { maxAzs: 2, natGateways: 0 });
    const domain = new Domain(search, 'Domain', {
      version: EngineVersion.OPENSEARCH_2_19,
      vpc,
      vpcSubnets: [{ subnets: vpc.privateSubnets.slice(0, 1) }],
      zoneAwareness: { enabled: false },
    });
    const sync = new Stack(app, 'Sync');
    new BackfillWorkflow(sync, 'Workflow', {
      table: importedStreamTable(sync),
      domain,
      index: 'orders',
      vpc,
    });
    app.synth();
    expect(Template.fromStack(search).findResources('AWS::EC2::SecurityGroupIngress')).toEqual({});
    Template.fromStack(sync).hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 443,
      ToPort: 443,
    });
    expect(search.dependencies).toEqual([]);
    expect(sync.dependencies).toEqual([search]);
  });
});

describe('BackfillWorkflow with your security groups', () => {
  /** A workflow for an imported domain in a VPC, with a security group of the app's. */
  function withOwnSecurityGroup(): { stack: Stack; group: SecurityGroup; workflow: BackfillWorkflow } {
    const { stack, table } = stackWithStreamTable();
    const vpc = new Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0 });
    const group = new SecurityGroup(stack, 'SearchClients', { vpc });
    const workflow = new BackfillWorkflow(stack, 'Workflow', {
      table,
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      index: 'orders',
      vpc,
      securityGroups: [group],
    });
    return { stack, group, workflow };
  }

  it('puts the functions in the security groups given, adds none, and leaves an imported domain alone', () => {
    const { stack, group } = withOwnSecurityGroup();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^ddb2os: scans'),
      VpcConfig: { SecurityGroupIds: [stack.resolve(group.securityGroupId)], SubnetIds: Match.anyValue() },
    });
    expect(Object.keys(template.findResources('AWS::EC2::SecurityGroup'))).toHaveLength(1);
    expect(template.findResources('AWS::EC2::SecurityGroupIngress')).toEqual({});
  });

  it("is connectable: a rule on an imported domain's security group lets in the functions' security groups", () => {
    const { stack, group, workflow } = withOwnSecurityGroup();
    const domainGroup = SecurityGroup.fromSecurityGroupId(stack, 'DomainGroup', 'sg-0123456789abcdef0');
    domainGroup.connections.allowFrom(workflow, Port.tcp(443));
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123456789abcdef0',
      FromPort: 443,
      ToPort: 443,
      SourceSecurityGroupId: stack.resolve(group.securityGroupId),
    });
  });

  it('runs every function outside any VPC without a vpc', () => {
    const { stack, table } = stackWithStreamTable();
    new BackfillWorkflow(stack, 'Workflow', {
      table,
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      index: 'orders',
    });
    const template = Template.fromStack(stack);
    expect([...functionsOf(template).values()].filter((fn) => fn.VpcConfig !== undefined)).toEqual([]);
    expect(template.findResources('AWS::EC2::SecurityGroup')).toEqual({});
  });
});

describe('BackfillWorkflow network props', () => {
  /** A workflow whose props `props` gives, with the app's VPC. */
  const build = (props: (vpc: Vpc, stack: Stack) => Partial<BackfillWorkflowProps>) =>
    workflowBuilder((stack) => props(new Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0 }), stack));

  it('rejects subnets without a vpc', () => {
    expect(build(() => ({ vpcSubnets: ISOLATED }))).toThrow(
      'BackfillWorkflow: vpcSubnets is given without vpc; give the VPC of the domain as vpc too',
    );
  });

  it('rejects security groups without a vpc', () => {
    expect(build((vpc, stack) => ({ securityGroups: [new SecurityGroup(stack, 'Group', { vpc })] }))).toThrow(
      'BackfillWorkflow: securityGroups is given without vpc',
    );
  });

  it('rejects an empty list of security groups', () => {
    expect(build((vpc) => ({ vpc, securityGroups: [] }))).toThrow(
      'BackfillWorkflow: securityGroups is empty; give at least one security group, or leave it out for a new one.',
    );
  });
});
