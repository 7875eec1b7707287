/**
 * Demo mode's fan-out for `-c changeSource=sqs`: an EventBridge pipe reads
 * the demo table's stream once and sends each record to an SQS queue, the
 * way a team that has no stream reader to spare feeds its subscribers (one
 * queue each; here the updater's is the only one). The queue and the pipe are
 * deleted with the stack, as the demo table is.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnPipe } from 'aws-cdk-lib/aws-pipes';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The demo table's stream → a pipe → the change queue (with a dead-letter queue of its own). */
export class DemoFanOut extends Construct {
  /** The queue the updater reads. */
  readonly changeQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly pipe: CfnPipe;

  constructor(scope: Construct, id: string, props: { table: ITable }) {
    super(scope, id);
    const streamArn = props.table.tableStreamArn as string;
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.changeQueue = new Queue(this, 'ChangeQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Six times the updater's 5-minute timeout, as AWS recommends for an SQS event source.
      visibilityTimeout: Duration.minutes(30),
      retentionPeriod: Duration.days(4),
      // A change the updater fails on 20 times (OpenSearch away for long) waits there for verify --repair.
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 20 },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(this, 'PipeRole', {
      assumedBy: new ServicePrincipal('pipes.amazonaws.com'),
      description: "ddb2os demo: the pipe that copies the demo table's stream records to the change queue",
    });
    role.addToPolicy(
      new PolicyStatement({
        actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
        resources: [streamArn],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.changeQueue.queueArn] }),
    );
    this.pipe = new CfnPipe(this, 'Pipe', {
      description: "ddb2os demo: the demo table's stream records to the change queue",
      roleArn: role.roleArn,
      source: streamArn,
      sourceParameters: {
        dynamoDbStreamParameters: {
          startingPosition: 'TRIM_HORIZON',
          batchSize: 10,
          // Until the records leave the stream: a change the pipe drops would be missing from the index.
          maximumRetryAttempts: -1,
          maximumRecordAgeInSeconds: -1,
        },
      },
      target: this.changeQueue.queueArn,
    });
    // The pipe checks its role's permissions when it is created: after the policy (the role itself it names).
    this.pipe.node.addDependency(role.node.findChild('DefaultPolicy'));
  }
}
