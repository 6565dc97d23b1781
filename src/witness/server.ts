/**
 * The HTTP witness: a compare-and-swap record over plain HTTP/JSON, for two-node clusters of the local
 * runtime (src/controller/witness/store-http.ts is its client):
 *
 *   GET /record    200 { version, record }            version '' and record null: nothing written yet
 *   PUT /record    { expectedVersion, record }
 *                  200 { version }                     written and fsynced
 *                  409 { current: { version, record }, reason }
 *                                                      the version moved on, or witnessWriteRefusal refused
 *                  400 { error }                       a malformed body (names the field)
 *   GET /healthz   200 { status: 'ok', version }
 *
 * Other failures answer { error } with 404, 405, 413, or 503 when the data file cannot be written.
 * Writes are serialized by the file store (src/witness/file-store.ts), so a compare-and-swap is atomic.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseWitnessRecord, WitnessRecordError, type VersionedWitnessRecord, type WitnessRecord } from '../domain/witness.ts';
import { logger } from '../log.ts';
import { recordProblem, WitnessFileError, type WitnessFileStore } from './file-store.ts';
import { JsonHttpError, readJsonBody, sendJson } from '../http-json.ts';

/** Request bodies above this are refused with 413. */
export const maxWitnessRequestBytes = 64 * 1024;

/** An answer with this status and `{ "error": message }`. */
export class WitnessHttpError extends JsonHttpError {
  override name = 'WitnessHttpError';
}

export interface WitnessWriteRequest {
  expectedVersion: string;
  record: WitnessRecord;
}

export type ParsedWitnessWrite = { ok: true; request: WitnessWriteRequest } | { ok: false; error: string };

/** Validates a decoded PUT /record body: the request, or a message for a 400 that names the bad field. */
export function parseWitnessWriteRequest(raw: unknown): ParsedWitnessWrite {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: 'the request body must be a JSON object with expectedVersion and record' };
  }
  const body = raw as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (key !== 'expectedVersion' && key !== 'record') return { ok: false, error: `${key}: unknown field (fields: expectedVersion, record)` };
  }
  const expectedVersion = body['expectedVersion'];
  if (typeof expectedVersion !== 'string') {
    return { ok: false, error: `expectedVersion: required, a string ('' to create the record), got ${expectedVersion === undefined ? 'nothing' : JSON.stringify(expectedVersion)}` };
  }
  if (body['record'] === undefined) return { ok: false, error: 'record: required (the witness record to write)' };
  try {
    return { ok: true, request: { expectedVersion, record: parseWitnessRecord('request', body['record']) } };
  } catch (error) {
    if (error instanceof WitnessRecordError) return { ok: false, error: `record: ${recordProblem(error)}` };
    throw error;
  }
}

/** The JSON form of a versioned record: `record` is null when nothing was written. */
export function versionedJson(value: VersionedWitnessRecord): { version: string; record: WitnessRecord | null } {
  return { version: value.version, record: value.record ?? null };
}

export interface WitnessServerOptions {
  store: WitnessFileStore;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default): any free port; see url. */
  port?: number;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class WitnessServer {
  readonly store: WitnessFileStore;
  private readonly server: http.Server;

  private constructor(store: WitnessFileStore, server: http.Server) {
    this.store = store;
    this.server = server;
  }

  static async start(options: WitnessServerOptions): Promise<WitnessServer> {
    const server = http.createServer((req, res) => void witness.serve(req, res));
    server.keepAliveTimeout = 5000;
    const witness = new WitnessServer(options.store, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return witness;
  }

  /** The base URL, e.g. http://127.0.0.1:7000. */
  get url(): string {
    const address = this.server.address() as AddressInfo | null;
    if (!address) throw new Error('the witness is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /**
   * Stops accepting connections, lets the requests in flight finish (their writes are queued in the
   * store and answered), then closes what is left after `graceMs` and the store.
   */
  async close(graceMs = 2000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await this.store.close();
    const timer = sleep(graceMs, undefined, { ref: false }).then(() => this.server.closeAllConnections());
    await Promise.race([closed, timer]);
    await closed;
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const { pathname } = new URL(req.url ?? '/', 'http://witness');
      const method = req.method ?? 'GET';
      const allow = (methods: string[]): void => {
        if (!methods.includes(method)) throw new WitnessHttpError(405, `${method} ${pathname}: use ${methods.join(' or ')}`, { Allow: methods.join(', ') });
      };
      if (pathname === '/healthz') {
        allow(['GET']);
        const { version } = await this.store.read();
        sendJson(res, 200, { status: 'ok', version });
        return;
      }
      if (pathname === '/record') {
        allow(['GET', 'PUT']);
        if (method === 'GET') {
          sendJson(res, 200, versionedJson(await this.store.read()));
          return;
        }
        const parsed = parseWitnessWriteRequest(await readJson(req));
        if (!parsed.ok) throw new WitnessHttpError(400, parsed.error);
        const result = await this.store.compareAndSwap(parsed.request.expectedVersion, parsed.request.record);
        if (result.ok) {
          logger.info('witness: record written', { version: result.version, epoch: parsed.request.record.epoch, owner: parsed.request.record.owner });
          sendJson(res, 200, { version: result.version });
        } else {
          sendJson(res, 409, { current: versionedJson(result.current), reason: result.reason });
        }
        return;
      }
      throw new WitnessHttpError(404, `no such path: ${pathname} (paths: /record, /healthz)`);
    } catch (error) {
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      if (error instanceof WitnessHttpError) {
        for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
        sendJson(res, error.status, { error: error.message });
        return;
      }
      if (error instanceof WitnessFileError) {
        logger.error('witness: the data file failed', { error: error.message });
        sendJson(res, 503, { error: error.message });
        return;
      }
      logger.error(`witness: ${req.method ?? '?'} ${req.url ?? '?'} failed`, { error: errorMessage(error) });
      sendJson(res, 500, { error: errorMessage(error) });
    }
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  return readJsonBody(req, { maxBytes: maxWitnessRequestBytes, expected: '{"expectedVersion": ..., "record": ...}', error: (status, message) => new WitnessHttpError(status, message) });
}
