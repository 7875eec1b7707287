/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of a REAL engine, for
 * the reliability tests: it misbehaves the way a busy OpenSearch domain or a
 * throttled DynamoDB table does, and passes everything else through
 * untouched, so what a test then finds in the engines is what they really
 * stored.
 *
 * - `bulkItemRejectShare` (OpenSearch): that share of the actions of each
 *   `_bulk` body is taken out of the request (OpenSearch never sees them) and
 *   answered as items with status 429 `es_rejected_execution_exception`, as a
 *   full write queue answers. A document is rejected at most
 *   `maxRejectionsPerDocument` times (default 1), so a client that retries
 *   gets everything in.
 * - `throttleShare` (DynamoDB): that share of the calls to the operations in
 *   `throttleOperations` (default `Scan`) is answered, without reaching
 *   DynamoDB, with HTTP 400 and the body DynamoDB sends when a table is over
 *   its capacity: `ProvisionedThroughputExceededException`.
 *
 * - `refuseBulkContaining`: a `_bulk` request whose body holds that text is
 *   answered, as a whole, HTTP 400 `illegal_argument_exception`, the way
 *   OpenSearch refuses a request for what it holds; the request never
 *   reaches the engine.
 * - `dropConnections`: every connection is closed as soon as it opens, and
 *   every open one at once, before any answer: the client sees a reset
 *   connection, as it does when the engine behind is stopped (a stopped
 *   process refuses the connection; to the client both are a connection
 *   error with no answer, and the port stays this proxy's for the way back).
 *
 * Shares are exact and deterministic: of the first n candidates,
 * floor(n × share) are faulted, spread evenly (no randomness to make a test
 * flaky). `setFaults` changes them while the proxy runs.
 */
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyFaults {
  /** Share (0 to 1) of `_bulk` actions answered 429 es_rejected_execution_exception. @default 0 */
  bulkItemRejectShare?: number;
  /** Most rejections of one document (by index and id). @default 1 */
  maxRejectionsPerDocument?: number;
  /** Share (0 to 1) of the DynamoDB calls in `throttleOperations` answered ProvisionedThroughputExceededException. @default 0 */
  throttleShare?: number;
  /** DynamoDB operations (the `X-Amz-Target` suffix) that may be throttled. @default ['Scan'] */
  throttleOperations?: string[];
  /** Close every connection before any answer: the engine as if stopped. @default false */
  dropConnections?: boolean;
  /** Answer HTTP 400 to a `_bulk` request whose body holds this text. @default none */
  refuseBulkContaining?: string;
}

export interface ProxyStats {
  /** Requests the proxy received. */
  requests: number;
  /** Requests passed on to the engine. */
  forwarded: number;
  bulkRequests: number;
  /** Actions in the `_bulk` bodies received. */
  bulkActions: number;
  /** Actions answered 429 by the proxy. */
  rejectedItems: number;
  /** DynamoDB calls by operation (`Scan`, `PutItem`, …). */
  operations: Record<string, number>;
  /** DynamoDB calls answered ProvisionedThroughputExceededException by the proxy. */
  throttled: number;
  /** Connections and requests closed unanswered (`dropConnections`). */
  dropped: number;
  /** `_bulk` requests answered 400 (`refuseBulkContaining`). */
  refusedBulkRequests: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give it to a client instead of the engine's URL. */
  url: string;
  /** The engine behind the proxy. */
  target: string;
  readonly stats: ProxyStats;
  setFaults(faults: ProxyFaults): void;
  close(): Promise<void>;
}

/** DynamoDB's answer to a call over the table's capacity (HTTP 400, JSON 1.0). */
export const THROTTLING_BODY = {
  __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
  message:
    'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
};

/** Headers that belong to one connection, not to the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]);

/** Takes exactly floor(n × share) of the first n candidates, evenly spread. */
class Share {
  private seen = 0;
  constructor(private share: number) {}
  set(share: number): void {
    this.share = share;
  }
  next(): boolean {
    this.seen += 1;
    return Math.floor(this.seen * this.share) > Math.floor((this.seen - 1) * this.share);
  }
}

function checkShare(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(`fault proxy: ${name} must be a share from 0 to 1, not ${value}`);
  }
  return value;
}

/** Starts the proxy on a free loopback port in front of `target` (an `http://` URL). */
export async function startFaultProxy(target: string, initial: ProxyFaults = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new RangeError(`fault proxy: ${target} is not an http:// URL`);
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const stats: ProxyStats = {
    requests: 0,
    forwarded: 0,
    bulkRequests: 0,
    bulkActions: 0,
    rejectedItems: 0,
    operations: {},
    throttled: 0,
    dropped: 0,
    refusedBulkRequests: 0,
  };
  let faults: Required<Omit<ProxyFaults, 'refuseBulkContaining'>> & { refuseBulkContaining?: string } = {
    bulkItemRejectShare: 0,
    maxRejectionsPerDocument: 1,
    throttleShare: 0,
    throttleOperations: ['Scan'],
    dropConnections: false,
  };
  let server: Server | undefined;
  const rejectShare = new Share(0);
  const throttleShare = new Share(0);
  const rejections = new Map<string, number>();
  const setFaults = (next: ProxyFaults) => {
    faults = {
      ...faults,
      ...next,
      bulkItemRejectShare: checkShare(
        'bulkItemRejectShare',
        next.bulkItemRejectShare ?? faults.bulkItemRejectShare,
      ),
      throttleShare: checkShare('throttleShare', next.throttleShare ?? faults.throttleShare),
    };
    rejectShare.set(faults.bulkItemRejectShare);
    throttleShare.set(faults.throttleShare);
    // Kept-alive connections too: a stopped engine answers on none of them.
    if (faults.dropConnections) server?.closeAllConnections();
  };
  setFaults(initial);

  const forward = (
    incoming: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      stats.forwarded += 1;
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      headers.host = upstream.host;
      headers['content-length'] = String(body.length);
      const outgoing = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers,
          agent,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const kept: Record<string, string | string[]> = {};
            for (const [name, value] of Object.entries(response.headers)) {
              if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
            }
            resolve({ status: response.statusCode ?? 502, headers: kept, body: Buffer.concat(chunks) });
          });
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const send = (
    outgoing: ServerResponse,
    status: number,
    headers: Record<string, string | string[]>,
    body: Buffer,
  ) => {
    outgoing.writeHead(status, { ...headers, 'content-length': String(body.length) });
    outgoing.end(body);
  };
  const sendJson = (outgoing: ServerResponse, status: number, json: unknown, contentType: string) =>
    send(outgoing, status, { 'content-type': contentType }, Buffer.from(JSON.stringify(json)));

  /** Takes the rejected actions out of a `_bulk` body, forwards the rest, and merges the answers in order. */
  const bulk = async (incoming: IncomingMessage, outgoing: ServerResponse, body: Buffer) => {
    stats.bulkRequests += 1;
    const lines = body
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '');
    const kept: string[] = [];
    const slots: ({ rejected: { op: string; index?: string; id?: string } } | { rejected: undefined })[] = [];
    for (let i = 0; i < lines.length; i += 1) {
      const actionLine = lines[i] as string;
      const action = JSON.parse(actionLine) as Record<string, { _index?: string; _id?: string }>;
      const op = Object.keys(action)[0] ?? 'index';
      const meta = action[op] ?? {};
      const withSource = op !== 'delete';
      const sourceLine = withSource ? lines[i + 1] : undefined;
      if (withSource) i += 1;
      stats.bulkActions += 1;
      const document = `${meta._index ?? ''}\n${meta._id ?? ''}`;
      const times = rejections.get(document) ?? 0;
      if (rejectShare.next() && times < faults.maxRejectionsPerDocument) {
        rejections.set(document, times + 1);
        stats.rejectedItems += 1;
        slots.push({ rejected: { op, index: meta._index, id: meta._id } });
      } else {
        kept.push(actionLine, ...(sourceLine === undefined ? [] : [sourceLine]));
        slots.push({ rejected: undefined });
      }
    }
    let items: unknown[] = [];
    let took = 0;
    if (kept.length > 0) {
      const response = await forward(incoming, Buffer.from(`${kept.join('\n')}\n`));
      if (response.status !== 200) {
        send(outgoing, response.status, response.headers, response.body);
        return;
      }
      const parsed = JSON.parse(response.body.toString('utf8')) as { items?: unknown[]; took?: number };
      items = parsed.items ?? [];
      took = parsed.took ?? 0;
    }
    const merged = slots.map((slot) =>
      slot.rejected
        ? {
            [slot.rejected.op]: {
              _index: slot.rejected.index,
              _id: slot.rejected.id,
              status: 429,
              error: {
                type: 'es_rejected_execution_exception',
                reason: 'rejected execution of coordinating operation (fault proxy: write queue full)',
              },
            },
          }
        : items.shift(),
    );
    const anyRejected = slots.some((slot) => slot.rejected);
    const upstreamErrors = merged.some((item) => {
      const result = Object.values((item ?? {}) as Record<string, { status?: number }>)[0];
      return (result?.status ?? 200) >= 300;
    });
    sendJson(
      outgoing,
      200,
      { took, errors: anyRejected || upstreamErrors, items: merged },
      'application/json',
    );
  };

  server = createServer((incoming, outgoing) => {
    if (faults.dropConnections) {
      stats.dropped += 1;
      incoming.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      stats.requests += 1;
      const body = Buffer.concat(chunks);
      try {
        const path = (incoming.url ?? '').split('?')[0] ?? '';
        const amzTarget = String(incoming.headers['x-amz-target'] ?? '');
        if (amzTarget !== '') {
          const operation = amzTarget.slice(amzTarget.lastIndexOf('.') + 1);
          stats.operations[operation] = (stats.operations[operation] ?? 0) + 1;
          if (faults.throttleOperations.includes(operation) && throttleShare.next()) {
            stats.throttled += 1;
            sendJson(outgoing, 400, THROTTLING_BODY, 'application/x-amz-json-1.0');
            return;
          }
        } else if (
          path.endsWith('/_bulk') &&
          faults.refuseBulkContaining !== undefined &&
          body.includes(faults.refuseBulkContaining)
        ) {
          stats.refusedBulkRequests += 1;
          sendJson(
            outgoing,
            400,
            {
              error: {
                type: 'illegal_argument_exception',
                reason: 'fault proxy: this bulk request is refused for what it holds',
              },
              status: 400,
            },
            'application/json',
          );
          return;
        } else if (path.endsWith('/_bulk') && incoming.method === 'POST' && faults.bulkItemRejectShare > 0) {
          await bulk(incoming, outgoing, body);
          return;
        }
        const response = await forward(incoming, body);
        send(outgoing, response.status, response.headers, response.body);
      } catch (error) {
        // The engine did not answer (stopped, reset): a gateway error, as a load balancer would give.
        if (!outgoing.headersSent) {
          sendJson(
            outgoing,
            502,
            { error: { type: 'fault_proxy_error', reason: String(error) }, status: 502 },
            'application/json',
          );
        } else outgoing.destroy();
      }
    });
  });
  server.on('connection', (socket) => {
    if (!faults.dropConnections) return;
    stats.dropped += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    target,
    stats,
    setFaults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          agent.destroy();
          resolve();
        });
      }),
  };
}
