/**
 * A small HTTP proxy on 127.0.0.1 in front of the real OpenSearch that
 * misbehaves the way a busy cluster does, for the BulkWriter tests (the
 * backfill's creates and the updater's index and delete actions):
 *
 * - `unavailableFirst`: answers the first n `_bulk` requests with 503;
 * - `rejectEvery`: takes every n-th action of a `_bulk` body out of
 *   the request (OpenSearch never sees it) and answers it with a 429
 *   es_rejected_execution_exception item, each document at most once;
 * - `maxBodyBytes`: answers a larger `_bulk` body with 413, like
 *   http.max_content_length;
 * - `beforeBulk`: awaited before a `_bulk` request goes on to OpenSearch,
 *   with its actions: a test makes another writer's change land there, so a
 *   race between reading a document and writing it happens every time.
 *
 * Everything else goes to OpenSearch untouched, so the documents a test
 * finds in the index are the ones OpenSearch really stored.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyFaults {
  unavailableFirst?: number;
  rejectEvery?: number;
  maxBodyBytes?: number;
  beforeBulk?: (actions: { operation: string; index: string; id: string }[]) => Promise<void>;
  /** Answers 503 to a request other than `_bulk` while this says so (method, path). */
  unavailableOther?: (method: string, path: string) => boolean;
}

export interface ProxyStats {
  bulkRequests: number;
  unavailable: number;
  rejected: number;
  tooLarge: number;
  /**
   * Each `_bulk` request as it arrived: body bytes, actions, the SHA-256 of
   * the body, and the SigV4 headers (x-amz-content-sha256, authorization)
   * when the client signed it.
   */
  bodies: {
    bytes: number;
    actions: number;
    sha256: string;
    contentSha256?: string;
    authorization?: string;
  }[];
  /** Most `_bulk` requests open at the same time. */
  maxInFlight: number;
}

export interface FaultyProxy {
  url: string;
  stats: ProxyStats;
  close(): Promise<void>;
}

export async function startFaultyProxy(target: string, faults: ProxyFaults): Promise<FaultyProxy> {
  const upstream = new URL(target);
  const stats: ProxyStats = {
    bulkRequests: 0,
    unavailable: 0,
    rejected: 0,
    tooLarge: 0,
    bodies: [],
    maxInFlight: 0,
  };
  let inFlight = 0;
  const rejectedOnce = new Set<string>();
  let actions = 0;

  const forward = (
    incoming: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...incoming.headers, host: upstream.host, 'content-length': String(body.length) };
      const outgoing = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 502,
              headers: { 'content-type': String(response.headers['content-type'] ?? 'application/json') },
              body: Buffer.concat(chunks),
            }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      const body = Buffer.concat(chunks);
      const answer = (status: number, json: unknown) => {
        const text = JSON.stringify(json);
        outgoing.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        outgoing.end(text);
      };
      try {
        const isBulk = (incoming.url ?? '').split('?')[0]?.endsWith('/_bulk') ?? false;
        if (!isBulk) {
          if (faults.unavailableOther?.(incoming.method ?? '', incoming.url ?? '')) {
            stats.unavailable += 1;
            answer(503, { error: { type: 'proxy_unavailable', reason: 'proxy: unavailable' }, status: 503 });
            return;
          }
          const response = await forward(incoming, body);
          outgoing.writeHead(response.status, response.headers);
          outgoing.end(response.body);
          return;
        }
        stats.bulkRequests += 1;
        stats.bodies.push({
          bytes: body.length,
          actions: bulkActions(body).length,
          sha256: createHash('sha256').update(body).digest('hex'),
          contentSha256: incoming.headers['x-amz-content-sha256'] as string | undefined,
          authorization: incoming.headers.authorization,
        });
        inFlight += 1;
        stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
        outgoing.on('close', () => {
          inFlight -= 1;
        });
        if (faults.maxBodyBytes !== undefined && body.length > faults.maxBodyBytes) {
          stats.tooLarge += 1;
          answer(413, {
            error: { type: 'request_entity_too_large', reason: 'proxy: body too large' },
            status: 413,
          });
          return;
        }
        if (stats.unavailable < (faults.unavailableFirst ?? 0)) {
          stats.unavailable += 1;
          answer(503, {
            error: { type: 'unavailable_shards_exception', reason: 'proxy: try again' },
            status: 503,
          });
          return;
        }
        if (faults.beforeBulk) await faults.beforeBulk(bulkActions(body));
        const kept: string[] = [];
        const slots: ({ rejected: string } | { rejected: false })[] = [];
        for (const { operation, id, lines } of bulkActions(body)) {
          actions += 1;
          if (faults.rejectEvery && actions % faults.rejectEvery === 0 && !rejectedOnce.has(id)) {
            rejectedOnce.add(id);
            stats.rejected += 1;
            slots.push({ rejected: operation });
          } else {
            kept.push(...lines);
            slots.push({ rejected: false });
          }
        }
        let items: unknown[] = [];
        if (kept.length > 0) {
          const response = await forward(incoming, Buffer.from(`${kept.join('\n')}\n`));
          if (response.status !== 200) {
            outgoing.writeHead(response.status, response.headers);
            outgoing.end(response.body);
            return;
          }
          items = (JSON.parse(response.body.toString('utf8')) as { items: unknown[] }).items;
        }
        const merged = slots.map((slot) =>
          slot.rejected
            ? {
                [slot.rejected]: {
                  status: 429,
                  error: { type: 'es_rejected_execution_exception', reason: 'proxy: write queue full' },
                },
              }
            : items.shift(),
        );
        answer(200, { errors: true, items: merged });
      } catch (error) {
        answer(502, { error: { type: 'proxy_error', reason: String(error) }, status: 502 });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The actions of a `_bulk` body: a delete is one line, every other operation two. */
function bulkActions(body: Buffer): { operation: string; index: string; id: string; lines: string[] }[] {
  const lines = body
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '');
  const actions: { operation: string; index: string; id: string; lines: string[] }[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const action = JSON.parse(lines[i] as string) as Record<string, { _index: string; _id: string }>;
    const operation = Object.keys(action)[0] as string;
    const own = [lines[i] as string];
    if (operation !== 'delete') {
      i += 1;
      own.push(lines[i] as string);
    }
    const { _index, _id } = action[operation] as { _index: string; _id: string };
    actions.push({ operation, index: _index, id: _id, lines: own });
  }
  return actions;
}

/** A port nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
