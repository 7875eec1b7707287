/**
 * The engines' files: DynamoDB Local and OpenSearch fetched with Maven
 * (engines/pom.xml) into a cache outside the work tree, and the Java that
 * runs them.
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
 * Fetches both engines with Maven (once) and unpacks OpenSearch (once).
 * A second call finds the marker files and does nothing.
 */
export function fetchEngines(log: (line: string) => void = () => {}): EngineArtifacts {
  const dynamoDbLocalVersion = pomVersion('dynamodb-local.version');
  const openSearchVersion = pomVersion('opensearch.version');
  const root = cacheDir();
  const stage = join(root, `artifacts-ddb${dynamoDbLocalVersion}-os${openSearchVersion}`);
  const openSearchHome = join(root, `opensearch-${openSearchVersion}`);
  const artifacts = { dynamoDbLocalVersion, openSearchVersion, dynamoDbLocalDir: stage, openSearchHome };

  if (existsSync(join(stage, '.complete')) && existsSync(join(openSearchHome, '.complete'))) return artifacts;

  mkdirSync(root, { recursive: true, mode: 0o755 });
  if (!existsSync(join(stage, '.complete'))) {
    log(`fetching DynamoDB Local ${dynamoDbLocalVersion} and OpenSearch ${openSearchVersion} with Maven…`);
    rmSync(stage, { recursive: true, force: true });
    try {
      execFileSync(
        'mvn',
        [
          '-q',
          '-B',
          '-f',
          POM,
          'dependency:copy-dependencies',
          `-DoutputDirectory=${stage}`,
          '-Dmdep.includeScope=runtime',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 },
      );
    } catch (error) {
      const output = (error as { stdout?: Buffer; stderr?: Buffer }).stdout?.toString() ?? '';
      throw new EngineError(
        `Maven could not fetch the engines (is mvn installed and Maven Central reachable?): ${output.slice(-2000)}`,
        { cause: error },
      );
    }
    writeFileSync(join(stage, '.complete'), new Date().toISOString());
  }
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
