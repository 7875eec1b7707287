/**
 * Step Functions ARNs: parsed from the command line, found in the stack's
 * output, and turned into the execution's console page.
 */
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { UsageError } from '../cli-error';
import type { AwsTarget } from './aws';
import { CloudError, errorMessage, errorName, explainAwsError } from './errors';

/** The parts of a Step Functions ARN. */
export interface StatesArn {
  arn: string;
  partition: string;
  region: string;
  account: string;
  resource: 'execution' | 'stateMachine' | 'express';
  /** The state machine name (with `/<Map label>` for a Map Run's child execution). */
  stateMachineName: string;
  /** The execution name (execution ARNs only). */
  executionName?: string;
}

const STATES_ARN =
  /^arn:(aws(?:-[a-z]+)*):states:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):(execution|stateMachine|express):([^:\s]+)(?::([^:\s]+))?$/;

/**
 * Parses a Step Functions ARN. A malformed one is a UsageError that names the
 * argument (`what`) and shows the expected shape.
 */
export function parseStatesArn(value: string, what: string, kind: 'execution' | 'stateMachine'): StatesArn {
  const match = STATES_ARN.exec(value.trim());
  const shape =
    kind === 'execution'
      ? 'arn:aws:states:<region>:<account>:execution:<state machine>:<execution name>'
      : 'arn:aws:states:<region>:<account>:stateMachine:<name>';
  const resource = match?.[4] as StatesArn['resource'] | undefined;
  const fits =
    match !== null &&
    (kind === 'execution'
      ? (resource === 'execution' || resource === 'express') && match[6] !== undefined
      : resource === 'stateMachine');
  if (!match || !fits) {
    throw new UsageError(`${what} "${value}" is not a Step Functions ${kindName(kind)} ARN (${shape})`);
  }
  return {
    arn: value.trim(),
    partition: match[1] as string,
    region: match[2] as string,
    account: match[3] as string,
    resource: resource as StatesArn['resource'],
    stateMachineName: match[5] as string,
    ...(kind === 'execution' ? { executionName: match[6] as string } : {}),
  };
}

function kindName(kind: 'execution' | 'stateMachine'): string {
  return kind === 'execution' ? 'execution' : 'state machine';
}

/** The execution's page in the Step Functions console. */
export function consoleUrl(executionArn: string, region: string): string {
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

/** The `StateMachineArn` output of a CloudFormation stack (the ddb2os stack declares it). */
export async function stateMachineArnFromStack(
  cloudFormation: CloudFormationClient,
  stackName: string,
  target: AwsTarget,
): Promise<string> {
  return stackOutput(cloudFormation, stackName, 'StateMachineArn', target);
}

/** One output of a ddb2os stack; a missing stack or output is a CloudError naming both. */
export async function stackOutput(
  cloudFormation: CloudFormationClient,
  stackName: string,
  outputKey: string,
  target: AwsTarget,
): Promise<string> {
  let outputs: { OutputKey?: string; OutputValue?: string }[];
  try {
    const answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = answer.Stacks?.[0]?.Outputs ?? [];
  } catch (error) {
    if (errorName(error) === 'ValidationError' && /does not exist/.test(errorMessage(error))) {
      throw new CloudError(`stack ${stackName} not found in ${target.region}`);
    }
    throw explainAwsError(error, target);
  }
  const value = outputs.find((output) => output.OutputKey === outputKey)?.OutputValue;
  if (!value) {
    const keys = outputs.map((output) => output.OutputKey).filter(Boolean);
    throw new CloudError(
      `stack ${stackName} in ${target.region} has no ${outputKey} output ` +
        `(${keys.length > 0 ? `its outputs: ${keys.join(', ')}` : 'it has no outputs'}); is it a ddb2os stack?`,
    );
  }
  return value;
}
