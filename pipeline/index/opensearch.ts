/**
 * The OpenSearch client every part uses: SigV4-signed through the default
 * credential chain on AWS (service `es` for a managed domain, `aoss` for
 * OpenSearch Serverless), plain HTTP locally, with keep-alive connections.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws-v3';
import { ConfigurationError } from '../errors';

export type OpenSearchSigning = 'es' | 'aoss' | 'none';

export interface OpenSearchClientOptions {
  /** `https://search-….es.amazonaws.com`, `https://….aoss.amazonaws.com` or `http://127.0.0.1:9200`. */
  endpoint: string;
  /** Default: `aoss` for a `.aoss.amazonaws.com` host, `es` for other `https` AWS hosts, `none` otherwise. */
  signing?: OpenSearchSigning;
  /** AWS region for signing (default AWS_REGION). */
  region?: string;
  /** Per-request timeout (default 120 s: a 5 MiB bulk on a busy cluster takes a while). */
  requestTimeoutMs?: number;
  /** Concurrent sockets per host (default 64). */
  maxSockets?: number;
}

/** Which signing an endpoint needs when none is configured. */
export function defaultSigning(endpoint: string): OpenSearchSigning {
  const host = safeUrl(endpoint).hostname;
  if (host.endsWith('.aoss.amazonaws.com')) return 'aoss';
  if (host.endsWith('.amazonaws.com') || host.endsWith('.amazonaws.com.cn')) return 'es';
  return 'none';
}

function safeUrl(endpoint: string): URL {
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`protocol ${url.protocol}`);
    return url;
  } catch (error) {
    throw new ConfigurationError(`OpenSearch endpoint "${endpoint}" is not an http(s) URL`, { cause: error });
  }
}

export function createOpenSearchClient(options: OpenSearchClientOptions): Client {
  const url = safeUrl(options.endpoint);
  const signing = options.signing ?? defaultSigning(options.endpoint);
  const maxSockets = options.maxSockets ?? 64;
  const agentOptions = { keepAlive: true, maxSockets, keepAliveMsecs: 10_000 };
  const base = {
    node: url.origin,
    requestTimeout: options.requestTimeoutMs ?? 120_000,
    // Retries are ours (BulkWriter): the client must not resend a bulk on its own.
    maxRetries: 0,
    compression: undefined,
    agent: () => (url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions)),
  };
  if (signing === 'none') return new Client(base);
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new ConfigurationError(
      `signing requests to ${url.host} needs a region: set AWS_REGION or pass --region`,
    );
  }
  const credentials = fromNodeProviderChain();
  return new Client({
    ...base,
    ...AwsSigv4Signer({ region, service: signing, getCredentials: () => credentials() }),
  });
}
