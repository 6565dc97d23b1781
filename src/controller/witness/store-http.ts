/**
 * The client of the HTTP witness process (`etcd-robustness witness`, src/witness/server.ts): GET /record
 * and PUT /record with { expectedVersion, record }. A 409 is a lost compare-and-swap; a connection error,
 * a timeout or a 5xx is a WitnessUnavailableError (after one from compareAndSwap the outcome of the
 * write is unknown: read again); a record the witness holds or refuses as invalid is a WitnessRecordError.
 */
import {
  parseWitnessRecord,
  WitnessRecordError,
  WitnessUnavailableError,
  type VersionedWitnessRecord,
  type Witness,
  type WitnessRecord,
  type WitnessWriteResult,
} from '../../domain/witness.ts';

export const defaultHttpWitnessTimeoutMs = 5000;

export interface HttpWitnessOptions {
  /** Per request (default 5 s). */
  timeoutMs?: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class HttpWitness implements Witness {
  /** The base URL (no trailing slash). */
  readonly description: string;
  private readonly timeoutMs: number;

  constructor(url: string, options: HttpWitnessOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new RangeError(`the witness URL "${url}" is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new RangeError(`the witness URL "${url}" is not http:// or https://`);
    this.description = url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? defaultHttpWitnessTimeoutMs;
  }

  get url(): string {
    return this.description;
  }

  /** One request: the status and the decoded JSON body. */
  private async request(method: 'GET' | 'PUT', body?: unknown): Promise<{ status: number; body: unknown }> {
    const what = `${method} ${this.description}/record`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.description}/record`, {
        method,
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      if (error instanceof Error && error.name === 'TimeoutError') {
        throw new WitnessUnavailableError(this.description, `${what}: no answer within ${this.timeoutMs} ms`, { cause: error });
      }
      const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
      const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (error as Error).message;
      throw new WitnessUnavailableError(this.description, `${what}: cannot reach it (${detail})`, { cause: error });
    }
    let decoded: unknown;
    try {
      decoded = JSON.parse(text) as unknown;
    } catch {
      throw new WitnessUnavailableError(this.description, `${what}: HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    return { status: response.status, body: decoded };
  }

  private errorText(body: unknown): string {
    return isObject(body) && typeof body['error'] === 'string' ? body['error'] : JSON.stringify(body).slice(0, 300);
  }

  /** A `{ version, record }` from the witness (record null or absent: nothing written yet). */
  private versioned(value: unknown, what: string): VersionedWitnessRecord {
    if (!isObject(value) || typeof value['version'] !== 'string') {
      throw new WitnessUnavailableError(this.description, `${what}: not a { version, record } answer: ${JSON.stringify(value).slice(0, 200)}`);
    }
    const version = value['version'];
    const raw = value['record'];
    if (raw === null || raw === undefined) {
      if (version !== '') throw new WitnessRecordError(this.description, `version ${version} has no record`);
      return { version, record: undefined };
    }
    return { version, record: parseWitnessRecord(this.description, raw) };
  }

  async read(): Promise<VersionedWitnessRecord> {
    const { status, body } = await this.request('GET');
    if (status !== 200) throw new WitnessUnavailableError(this.description, `GET /record: HTTP ${status}: ${this.errorText(body)}`);
    return this.versioned(body, 'GET /record');
  }

  async compareAndSwap(expectedVersion: string, next: WitnessRecord): Promise<WitnessWriteResult> {
    const record = parseWitnessRecord(this.description, next);
    const { status, body } = await this.request('PUT', { expectedVersion, record });
    if (status === 200 && isObject(body) && typeof body['version'] === 'string' && body['version'] !== '') {
      return { ok: true, version: body['version'] };
    }
    if (status === 409 && isObject(body) && typeof body['reason'] === 'string') {
      return { ok: false, current: this.versioned(body['current'], 'PUT /record'), reason: body['reason'] };
    }
    if (status === 400) throw new WitnessRecordError(this.description, `the witness refused the write: ${this.errorText(body)}`);
    throw new WitnessUnavailableError(this.description, `PUT /record: HTTP ${status}: ${this.errorText(body)}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
