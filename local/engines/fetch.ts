/**
 * The engines' files: DynamoDB Local, OpenSearch and ElasticMQ fetched with
 * Maven (engines/pom.xml, one profile per classpath) into a cache outside the
 * work tree, and the Java that runs them.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from './engine';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const POM = join(REPO_ROOT, 'engines', 'pom.xml');

/** Cache folder for the unpacked engines: outside the work tree, readable by the unprivileged user. */
export function cacheDir(): string {
  if (process.env.DDB2OS_CACHE_DIR) return resolve(process.env.DDB2OS_CACHE_DIR);
  // root's home is usually 0700, and OpenSearch runs as nobody: use a shared cache.
  if (process.getuid?.() === 0) return '/var/cache/ddb2os';
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ddb2os');
}

function pomVersion(property: string): string {
  const match = readFileSync(POM, 'utf8').match(new RegExp(`<${property}>([^<]+)</${property}>`));
  if (!match?.[1]) throw new EngineError(`engines/pom.xml has no <${property}>`);
  return match[1];
}

export interface EngineArtifacts {
  dynamoDbLocalVersion: string;
  openSearchVersion: string;
  /** Folder with DynamoDBLocal's jars and its sqlite4java native libraries. */
  dynamoDbLocalDir: string;
  /** Unpacked OpenSearch distribution. */
  openSearchHome: string;
}

/**
 * Fetches DynamoDB Local and OpenSearch with Maven (once) and unpacks
 * OpenSearch (once). A second call finds the marker files and does nothing.
 */
export function fetchEngines(log: (line: string) => void = () => {}): EngineArtifacts {
  const dynamoDbLocalVersion = pomVersion('dynamodb-local.version');
  const openSearchVersion = pomVersion('opensearch.version');
  const root = cacheDir();
  const stage = join(root, `artifacts-ddb${dynamoDbLocalVersion}-os${openSearchVersion}`);
  const openSearchHome = join(root, `opensearch-${openSearchVersion}`);
  const artifacts = { dynamoDbLocalVersion, openSearchVersion, dynamoDbLocalDir: stage, openSearchHome };

  if (existsSync(join(stage, '.complete')) && existsSync(join(openSearchHome, '.complete'))) return artifacts;

  mavenCopyDependencies(
    'core',
    stage,
    `DynamoDB Local ${dynamoDbLocalVersion} and OpenSearch ${openSearchVersion}`,
    log,
  );
  if (!existsSync(join(openSearchHome, '.complete'))) {
    log(`unpacking OpenSearch ${openSearchVersion} into ${openSearchHome}…`);
    const zip = join(stage, `opensearch-${openSearchVersion}.zip`);
    if (!existsSync(zip)) throw new EngineError(`${zip} is missing after the Maven fetch`);
    const unpack = mkdtempSync(join(root, '.unpack-'));
    try {
      if (hasCommand('unzip')) execFileSync('unzip', ['-q', zip, '-d', unpack]);
      else execFileSync('jar', ['xf', zip], { cwd: unpack });
      rmSync(openSearchHome, { recursive: true, force: true });
      cpSync(join(unpack, `opensearch-${openSearchVersion}`), openSearchHome, { recursive: true });
    } finally {
      rmSync(unpack, { recursive: true, force: true });
    }
    for (const script of readdirSync(join(openSearchHome, 'bin'))) {
      execFileSync('chmod', ['0755', join(openSearchHome, 'bin', script)]);
    }
    execFileSync('chmod', ['-R', 'a+rX', openSearchHome]);
    writeFileSync(join(openSearchHome, '.complete'), new Date().toISOString());
  }
  return artifacts;
}

export interface ElasticMqArtifacts {
  elasticMqVersion: string;
  /** Folder with ElasticMQ's jars (its classpath). */
  elasticMqDir: string;
}

/** Fetches ElasticMQ (the SQS engine) with Maven, once; only what asks for an SQS engine calls it. */
export function fetchElasticMq(log: (line: string) => void = () => {}): ElasticMqArtifacts {
  const elasticMqVersion = pomVersion('elasticmq.version');
  const elasticMqDir = join(cacheDir(), `elasticmq-${elasticMqVersion}`);
  mavenCopyDependencies('elasticmq', elasticMqDir, `ElasticMQ ${elasticMqVersion}`, log);
  return { elasticMqVersion, elasticMqDir };
}

/**
 * Copies the runtime dependencies of one engines/pom.xml profile into
 * `folder`, unless it is already complete. Test files start the SQS engine
 * side by side, so the copy goes to a folder of its own and is renamed into
 * place: a second fetcher that loses the race discards its copy.
 */
function mavenCopyDependencies(
  profile: string,
  folder: string,
  what: string,
  log: (line: string) => void,
): void {
  if (existsSync(join(folder, '.complete'))) return;
  const root = dirname(folder);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  log(`fetching ${what} with Maven…`);
  const copy = mkdtempSync(join(root, '.fetch-'));
  try {
    try {
      execFileSync(
        'mvn',
        [
          '-q',
          '-B',
          '-f',
          POM,
          '-P',
          profile,
          'dependency:copy-dependencies',
          `-DoutputDirectory=${copy}`,
          '-Dmdep.includeScope=runtime',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 },
      );
    } catch (error) {
      const output = (error as { stdout?: Buffer; stderr?: Buffer }).stdout?.toString() ?? '';
      throw new EngineError(
        `Maven could not fetch ${what} (is mvn installed and Maven Central reachable?): ${output.slice(-2000)}`,
        { cause: error },
      );
    }
    writeFileSync(join(copy, '.complete'), new Date().toISOString());
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    // A folder left by an interrupted fetch of the old kind (no marker) is replaced.
    if (existsSync(folder) && !existsSync(join(folder, '.complete')))
      rmSync(folder, { recursive: true, force: true });
    try {
      renameSync(copy, folder);
    } catch (error) {
      if (!existsSync(join(folder, '.complete'))) throw error;
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The Java that runs the engines: JAVA_HOME, else the `java` on PATH. */
export function javaHome(): string {
  if (process.env.JAVA_HOME && existsSync(join(process.env.JAVA_HOME, 'bin', 'java')))
    return process.env.JAVA_HOME;
  try {
    const java = execFileSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).trim();
    return dirname(dirname(realpathSync(java)));
  } catch (error) {
    throw new EngineError('Java 17 or newer is needed to run the local engines, and no `java` is on PATH', {
      cause: error,
    });
  }
}
