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
  name: 'DynamoDB Local' | 'OpenSearch' | 'DynamoDB' | 'OpenSearch (external)';
  url: string;
  /** Version as the engine reports it, or `external` when it is not known. */
  version: string;
  /** True when the endpoint came from DYNAMODB_ENDPOINT / OPENSEARCH_URL and was not started here. */
  external: boolean;
  /** Process id of the engine's JVM (and process group), when started here (it changes on a restart). */
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

export interface EngineOptions {
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
  /** OpenSearch JVM heap, e.g. `1g` (default: DDB2OS_OPENSEARCH_HEAP or 1g). */
  openSearchHeap?: string;
  /** Ignore DYNAMODB_ENDPOINT / OPENSEARCH_URL and start both engines. */
  ignoreEnvironment?: boolean;
  /**
   * CPUs each engine is started on (taskset syntax, `0` or `2-3`). An engine
   * started on its CPUs sizes its garbage collector and thread pools to them;
   * one pinned after it started keeps those it sized for every CPU.
   */
  cpus?: { dynamodb?: string; opensearch?: string };
}
