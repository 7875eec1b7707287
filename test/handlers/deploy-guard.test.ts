import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handler } from '../../handlers/deploy-guard';

const event = (RequestType: 'Create' | 'Update' | 'Delete') =>
  ({
    RequestType,
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:provider',
    ResponseURL: 'https://example.invalid/response',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Ddb2osBackfill/1',
    RequestId: 'request-1',
    LogicalResourceId: 'DeployGuard',
    PhysicalResourceId: 'updater-deploy-guard',
    ResourceType: 'Custom::Ddb2osUpdaterDeployGuard',
    ResourceProperties: {
      ServiceToken: 'x',
      UpdaterMappingUuid: 'uuid-1',
      UpdaterMappingPropertiesHash: 'abc',
    },
    OldResourceProperties: {},
  }) as CloudFormationCustomResourceEvent;

describe('deploy guard handler', () => {
  it('does nothing when the stack deletes it', async () => {
    // Act
    const response = await handler(event('Delete'), {} as Context);

    // Assess
    expect(response).toEqual({
      PhysicalResourceId: 'updater-deploy-guard',
      Data: { Enabled: 'false', Outcome: 'deleted' },
    });
  });

  it('never fails the deploy: it answers with what went wrong and where the alarm takes over', async () => {
    // Prepare: no settings, as a function deployed without its environment would be
    const saved = process.env.DDB2OS_TABLE_NAME;
    delete process.env.DDB2OS_TABLE_NAME;

    // Act
    const response = await handler(event('Update'), {} as Context).finally(() => {
      if (saved !== undefined) process.env.DDB2OS_TABLE_NAME = saved;
    });

    // Assess
    expect(response).toEqual({
      PhysicalResourceId: 'updater-deploy-guard',
      Data: {
        Enabled: 'false',
        Outcome:
          'The deploy could not check or resume the stream updater (environment variable DDB2OS_TABLE_NAME is ' +
          'not set); if the updater stays paused, the UpdaterPausedOutsideBackfill alarm fires and the ' +
          "watchdog's log says what to run.",
      },
    });
  });
});
