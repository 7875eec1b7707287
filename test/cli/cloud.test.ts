import { describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/cli-error';
import { consoleUrl, parseStatesArn } from '../../cli/cloud/arns';
import { resolveTarget, withDefaults } from '../../cli/cloud/aws';
import { explainAwsError } from '../../cli/cloud/errors';
import { failureSentence, summaryLines } from '../../cli/cloud/render';
import type { CliIo } from '../../cli/io';
import { awsError, EXECUTION_ARN, STATE_MACHINE_ARN } from './cloud-stub';

function io(env: NodeJS.ProcessEnv): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env, signal: new AbortController().signal };
}

function args(values: Record<string, string>) {
  return { values, positionals: [], help: false };
}

describe('cli/cloud', () => {
  it('parses execution and state machine ARNs, Map Run children and other partitions included', () => {
    expect(parseStatesArn(EXECUTION_ARN, 'EXECUTION_ARN', 'execution')).toEqual({
      arn: EXECUTION_ARN,
      partition: 'aws',
      region: 'eu-west-1',
      account: '123456789012',
      resource: 'execution',
      stateMachineName: 'Ddb2osBackfill',
      executionName: 'orders-run-1',
    });
    expect(
      parseStatesArn(
        'arn:aws:states:us-east-1:123456789012:execution:Ddb2osBackfill/Segments:0c4b1b53-6d7e-3c8f-a6c4-1b7f3e2a9d10',
        'EXECUTION_ARN',
        'execution',
      ).stateMachineName,
    ).toBe('Ddb2osBackfill/Segments');
    expect(
      parseStatesArn('arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:B', 'ARN', 'stateMachine')
        .region,
    ).toBe('us-gov-west-1');
    expect(parseStatesArn(STATE_MACHINE_ARN, 'ARN', 'stateMachine').stateMachineName).toBe('Ddb2osBackfill');
  });

  it.each([
    ['', 'execution'],
    ['arn:aws:states:eu-west-1:123456789012:stateMachine:B', 'execution'],
    ['arn:aws:states:eu-west-1:123456789012:execution:B', 'execution'],
    ['arn:aws:states:eu-west-1:12345:execution:B:run', 'execution'],
    ['arn:aws:states:eu-west-1:123456789012:execution:B:run', 'stateMachine'],
    ['arn:aws:sqs:eu-west-1:123456789012:queue', 'stateMachine'],
  ] as const)('rejects %j as a %s ARN with a UsageError naming the argument', (value, kind) => {
    expect(() => parseStatesArn(value, 'THE_ARG', kind)).toThrow(UsageError);
    expect(() => parseStatesArn(value, 'THE_ARG', kind)).toThrow(/^THE_ARG ".*" is not a Step Functions/);
  });

  it('builds the console link of an execution', () => {
    expect(consoleUrl(EXECUTION_ARN, 'eu-west-1')).toBe(
      `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${EXECUTION_ARN}`,
    );
  });

  it('looks for the region in --region, AWS_REGION, AWS_DEFAULT_REGION, the ARN, then the profile', async () => {
    const arn = parseStatesArn(EXECUTION_ARN, 'ARN', 'execution');
    const deps = withDefaults({
      configuredRegion: async (profile) => (profile === 'p' ? 'ca-central-1' : undefined),
    });
    const env = { AWS_REGION: 'us-east-2', AWS_DEFAULT_REGION: 'us-west-1' };

    expect(await resolveTarget(args({ region: 'ap-south-1' }), io(env), deps, { arn })).toEqual({
      region: 'ap-south-1',
    });
    expect(await resolveTarget(args({}), io(env), deps, { arn })).toEqual({ region: 'us-east-2' });
    expect(await resolveTarget(args({}), io({ AWS_DEFAULT_REGION: 'us-west-1' }), deps, { arn })).toEqual({
      region: 'us-west-1',
    });
    expect(await resolveTarget(args({}), io({}), deps, { arn })).toEqual({ region: 'eu-west-1' });
    expect(await resolveTarget(args({ profile: 'p' }), io({}), deps)).toEqual({
      region: 'ca-central-1',
      profile: 'p',
    });
    await expect(resolveTarget(args({}), io({}), deps)).rejects.toThrow(
      'no AWS region: pass --region, set AWS_REGION, or configure a region for the profile',
    );
  });

  it('turns credential, token and access errors into one sentence', () => {
    const target = { region: 'eu-west-1' };
    expect(explainAwsError(awsError('CredentialsProviderError', 'Could not load'), target).message).toBe(
      'no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile',
    );
    expect(
      explainAwsError(
        awsError('CredentialsProviderError', 'Could not resolve credentials using profile: [x]'),
        { region: 'eu-west-1', profile: 'x' },
      ).message,
    ).toBe('no usable AWS credentials for profile "x": Could not resolve credentials using profile: [x]');
    expect(
      explainAwsError(
        awsError('ExpiredTokenException', 'The security token included in the request is expired'),
        target,
      ).message,
    ).toBe('the AWS credentials have expired: refresh them (e.g. aws sso login) and try again');
    expect(explainAwsError(awsError('ThrottlingException', 'Rate exceeded'), target).message).toBe(
      'ThrottlingException: Rate exceeded',
    );
  });

  it('prints the run summary with readable labels and the failure as one line', () => {
    expect(
      summaryLines({ runId: 'r', segments: 2, scanned: 1500, alreadyPresent: 3, durationSeconds: 75 }),
    ).toEqual([
      '  segments         2',
      '  items scanned    1,500',
      '  already present  3',
      '  duration         1m15s (75 s)',
    ]);
    // Fields whose type did not fit: one line each, none when the list is empty.
    const fix = 'map it explicitly in the index definition';
    expect(
      summaryLines({
        failed: 3,
        fieldConflicts: [
          {
            index: 'books',
            field: 'e',
            indexType: 'object',
            itemTypes: ['a string', 'a number'],
            items: 3,
            fix,
          },
        ],
      }),
    ).toEqual([
      '  items failed (dead-lettered)  3',
      'fields whose type in the index does not fit some items (those items are dead-lettered):',
      `  index books: field e is an object in the index mapping and a string or a number in 3 items; ${fix}`,
    ]);
    expect(summaryLines({ failed: 0, fieldConflicts: [] })).toEqual(['  items failed (dead-lettered)  0']);
    expect(
      failureSentence(
        {
          executionArn: EXECUTION_ARN,
          status: 'FAILED',
          redriveCount: 0,
          error: 'E',
          cause: 'line one\n  line two',
        },
        undefined,
      ),
    ).toBe('execution FAILED: E: line one line two');
  });
});
