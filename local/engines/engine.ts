/** What a local engine is, what starting one takes, and the error when it cannot start. */
import { BackfillError } from '../../pipeline/errors';

/** A local engine could not be fetched, started or reached. */
export class EngineError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
  }
}

/** A running engine, or an existing endpoint named by an environment variable. */
export interface Engine {
  name:
    | 'DynamoDB Local'
    | 'OpenSearch'
    | 'DynamoDB'
    | 'OpenSearch (external)'
    | 'ElasticMQ'
    | 'SQS (external)'
    | 'kinesalite'
    | 'Kinesis (external)';
  url: string;
  /** Version as the engine reports it, or `external` when it is not known. */
  version: string;
  /** True when the endpoint came from an environment variable (DYNAMODB_ENDPOINT, …) and was not started here. */
  external: boolean;
  /** Process id of the engine's process (and process group), when started here (it changes on a restart). */
  pid?: number;
  stop(): Promise<void>;
  /**
   * Stops the engine's process (a real stop: SIGTERM, or SIGKILL for a crash)
   * but keeps its data folder and port, so that `startAgain()` brings the
   * same engine back with the same data. Only on an engine started here
   * (OpenSearch); for fault injection in tests.
   */
  stopProcess?(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Starts the process that `stopProcess()` stopped, on the same port and data; resolves once it is healthy. */
  startAgain?(): Promise<void>;
  /** `stopProcess()`, an optional pause with the engine down, then `startAgain()`. */
  restart?(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downForMs?: number }): Promise<void>;
}

/** An existing endpoint, named by an environment variable, used as it is (nothing to start or stop). */
export function existingEndpoint(name: Engine['name'], url: string): Engine {
  return { name, url: url.replace(/\/+$/, ''), version: 'external', external: true, stop: async () => {} };
}

/** The account id in the local queues' and streams' URLs and ARNs (ElasticMQ's default). */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** The region the local engines put in their ARNs: the clients' (AWS_REGION), as the tests set it. */
export function localRegion(): string {
  return process.env.AWS_REGION ?? 'us-east-1';
}

export interface EngineOptions {
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
  /** OpenSearch JVM heap, e.g. `1g` (default: DDB2OS_OPENSEARCH_HEAP or 1g). */
  openSearchHeap?: string;
  /** Ignore DYNAMODB_ENDPOINT, OPENSEARCH_URL, SQS_ENDPOINT and KINESIS_ENDPOINT and start the engines. */
  ignoreEnvironment?: boolean;
  /**
   * Also an SQS engine (ElasticMQ, or SQS_ENDPOINT) and a Kinesis engine
   * (kinesalite, or KINESIS_ENDPOINT), for the change sources that are not
   * the table's stream. Off by default: most runs and tests need neither.
   */
  sqs?: boolean;
  kinesis?: boolean;
  /**
   * CPUs each engine is started on (taskset syntax, `0` or `2-3`). An engine
   * started on its CPUs sizes its garbage collector and thread pools to them;
   * one pinned after it started keeps those it sized for every CPU.
   */
  cpus?: { dynamodb?: string; opensearch?: string };
}
