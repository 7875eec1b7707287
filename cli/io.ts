/** What a command may touch: its output streams, the environment, and a signal for Ctrl-C. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Aborted on the first Ctrl-C (SIGINT) or SIGTERM: commands stop cleanly and keep their checkpoints. */
  signal: AbortSignal;
}

export function processIo(signal: AbortSignal): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, signal };
}
