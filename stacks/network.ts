/**
 * The network of a VPC-only domain: where the functions that call OpenSearch
 * run, with which security groups, and the rule that lets them into the
 * domain. The other functions call only AWS APIs and stay outside the VPC,
 * where they need no NAT gateway nor VPC endpoint.
 */

import {
  type Connections,
  type ISecurityGroup,
  type IVpc,
  Port,
  SecurityGroup,
  type SubnetSelection,
} from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IDomain } from 'aws-cdk-lib/aws-opensearchservice';
import type { Construct } from 'constructs';

/** Where a function runs in a VPC: passed as they are to the Lambda function's props. */
export interface FunctionNetwork {
  readonly vpc: IVpc;
  readonly vpcSubnets?: SubnetSelection;
  readonly securityGroups: ISecurityGroup[];
}

/**
 * The network of the functions that call OpenSearch, from the props (checked
 * already): undefined without a VPC, else the given security groups or a new one.
 */
export function openSearchClientNetwork(
  scope: Construct,
  props: { vpc?: IVpc; vpcSubnets?: SubnetSelection; securityGroups?: ISecurityGroup[] },
): FunctionNetwork | undefined {
  const { vpc, vpcSubnets } = props;
  if (vpc === undefined) return undefined;
  const securityGroups = props.securityGroups ?? [
    new SecurityGroup(scope, 'OpenSearchClientSecurityGroup', {
      vpc,
      description: 'ddb2os: the functions that call OpenSearch (plan, worker, updater, summarize)',
      // They reach OpenSearch on 443 and DynamoDB, S3, SQS, Step Functions and X-Ray through
      // endpoints or a NAT gateway whose addresses the construct cannot know; nothing connects to them.
      allowAllOutbound: true,
    }),
  ];
  return { vpc, vpcSubnets, securityGroups };
}

/**
 * What Lambda needs to attach a function to the VPC (the actions of the AWS
 * managed AWSLambdaVPCAccessExecutionRole, which CDK adds only to roles it
 * creates). Describe* take no resource, and Lambda names no interface in
 * advance, hence "*".
 */
export function networkInterfaceStatement(): PolicyStatement {
  return new PolicyStatement({
    actions: [
      'ec2:CreateNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSubnets',
      'ec2:DeleteNetworkInterface',
      'ec2:AssignPrivateIpAddresses',
      'ec2:UnassignPrivateIpAddresses',
    ],
    resources: ['*'],
  });
}

/**
 * Lets the functions into a VPC domain on HTTPS, when the domain is a Domain
 * construct in a VPC (its security groups are known); an imported domain's
 * rules are its owner's. The rules are made in `scope`, the workflow: were they
 * in the domain's stack, that stack would name the workflow's security group
 * while the workflow's names the domain, a cycle when they are two stacks.
 */
export function allowDomainIngress(
  scope: Construct,
  domain: IDomain | undefined,
  network: FunctionNetwork,
): void {
  const domainGroups = domainConnections(domain)?.securityGroups ?? [];
  domainGroups.forEach((domainGroup, index) => {
    const target = SecurityGroup.fromSecurityGroupId(
      scope,
      `DomainSecurityGroup${index}`,
      domainGroup.securityGroupId,
    );
    for (const group of network.securityGroups) {
      target.addIngressRule(group, Port.tcp(443), 'ddb2os: the functions that call OpenSearch');
    }
  });
}

function domainConnections(domain: IDomain | undefined): Connections | undefined {
  if (domain === undefined || !('connections' in domain)) return undefined;
  try {
    return (domain as { connections: Connections }).connections;
  } catch {
    // CDK's Domain throws on `connections` when it is not in a VPC: there is no rule to add.
    return undefined;
  }
}
