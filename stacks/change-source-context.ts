/**
 * The change source from CDK context (`-c changeSource=kinesis -c
 * kinesisStreamArn=…`, `-c changeSource=sqs -c changeQueueArn=…`, and
 * `-c changeSourceKeyArn=…` for a source encrypted with a customer managed
 * key), checked at synth: every message names the `-c` flag. The construct
 * checks the props it becomes once more (change-source.ts).
 */
import { type Stack, Token } from 'aws-cdk-lib';
import { Stream } from 'aws-cdk-lib/aws-kinesis';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import {
  CHANGE_SOURCES,
  type ChangeSourceKind,
  isChangeSourceKind,
} from '../pipeline/contract/change-source';
import { type ChangeSourceProps, EXAMPLE_ARNS, KINESIS_STREAM_ARN, SQS_QUEUE_ARN } from './change-source';

/** The change source settings as given, before any construct is made from them. */
export interface ChangeSourceContext {
  readonly changeSource: ChangeSourceKind;
  /** The stream's or the queue's ARN (none for the DynamoDB stream). */
  readonly sourceArn?: string;
  /** The customer managed key the stream or queue is encrypted with. */
  readonly keyArn?: string;
}

const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Reads and checks the change source flags; `setting` reads a prop or,
 * failing that, the context value. In demo mode the stack makes its own
 * stream, so none is named.
 */
export function readChangeSourceContext(
  stack: Stack,
  setting: (name: 'changeSource' | 'kinesisStreamArn' | 'changeQueueArn' | 'changeSourceKeyArn') => unknown,
  demo: boolean,
): ChangeSourceContext {
  const given = setting('changeSource') ?? CHANGE_SOURCES[0];
  if (!isChangeSourceKind(given)) {
    throw new Error(`-c changeSource must be one of ${CHANGE_SOURCES.join(', ')} (got ${String(given)}).`);
  }
  const kinesisStreamArn = setting('kinesisStreamArn') as string | undefined;
  const changeQueueArn = setting('changeQueueArn') as string | undefined;
  const keyArn = setting('changeSourceKeyArn') as string | undefined;
  const flags = {
    kinesis: ['kinesisStreamArn', kinesisStreamArn],
    sqs: ['changeQueueArn', changeQueueArn],
  } as const;
  for (const [owner, [flag, value]] of Object.entries(flags)) {
    if (value !== undefined && owner !== given) {
      throw new Error(
        `-c ${flag} is given, but the change source is ${given}: add -c changeSource=${owner}, or leave ${flag} out.`,
      );
    }
  }
  if (demo) {
    const named = Object.entries({ kinesisStreamArn, changeQueueArn, changeSourceKeyArn: keyArn }).find(
      ([, value]) => value !== undefined,
    );
    if (named) {
      throw new Error(`-c ${named[0]} is not for demo mode, which makes its own stream; leave it out.`);
    }
    return { changeSource: given };
  }
  if (given === 'dynamodb-stream') {
    if (keyArn !== undefined) {
      throw new Error(
        '-c changeSourceKeyArn is for a Kinesis stream or an SQS queue encrypted with a customer managed key; ' +
          'the DynamoDB stream needs none (add -c changeSource=kinesis or sqs, or leave it out).',
      );
    }
    return { changeSource: given };
  }
  const [flag, arn] = flags[given];
  if (arn === undefined) {
    throw new Error(`-c changeSource=${given} needs -c ${flag}, like -c ${flag}=${EXAMPLE_ARNS[given]}.`);
  }
  requireRegionalArn(
    stack,
    flag,
    arn,
    given === 'kinesis' ? KINESIS_STREAM_ARN : SQS_QUEUE_ARN,
    EXAMPLE_ARNS[given],
  );
  if (keyArn !== undefined) {
    requireRegionalArn(
      stack,
      'changeSourceKeyArn',
      keyArn,
      KMS_KEY_ARN,
      'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    );
  }
  return { changeSource: given, sourceArn: arn, ...(keyArn ? { keyArn } : {}) };
}

/** The construct props of the change source: imports the stream or queue (and its key) into `stack`. */
export function changeSourceProps(stack: Stack, context: ChangeSourceContext): ChangeSourceProps {
  const { changeSource, sourceArn, keyArn } = context;
  if (changeSource === 'kinesis') {
    const encryptionKey = keyArn ? Key.fromKeyArn(stack, 'ChangeSourceKey', keyArn) : undefined;
    return {
      changeSource,
      kinesisStream: Stream.fromStreamAttributes(stack, 'ChangeStream', {
        streamArn: sourceArn as string,
        ...(encryptionKey ? { encryptionKey } : {}),
      }),
    };
  }
  if (changeSource === 'sqs') {
    // FIFO is read from the ARN: a FIFO queue's name ends in .fifo.
    return {
      changeSource,
      changeQueue: Queue.fromQueueAttributes(stack, 'ChangeQueue', {
        queueArn: sourceArn as string,
        ...(keyArn ? { keyArn } : {}),
      }),
    };
  }
  return { changeSource };
}

/** An event source mapping reads only a stream or queue of its own region; a key too must be there. */
function requireRegionalArn(stack: Stack, flag: string, arn: string, pattern: RegExp, example: string): void {
  if (Token.isUnresolved(arn)) return;
  const match = pattern.exec(arn);
  if (!match) throw new Error(`-c ${flag} must be an ARN like ${example} (got ${arn}).`);
  const region = match[1];
  if (!Token.isUnresolved(stack.region) && region !== stack.region) {
    throw new Error(
      `-c ${flag} is in ${region}, but the stack deploys to ${stack.region}: an event source mapping reads only ` +
        'streams and queues of its own region. Deploy the stack in that region.',
    );
  }
}
