/**
 * Client for gofail's HTTP API, which a gofail-enabled etcd serves when started with
 * GOFAIL_HTTP=host:port: `GET /` lists failpoints as `name=term` lines, `PUT /<name>` with a term
 * (`panic`, `sleep("1s")`, `1*return(true)`...) activates one, `DELETE /<name>` deactivates it.
 */
export class FailpointError extends Error {
  override name = 'FailpointError';
  readonly endpoint: string;
  readonly failpoint: string | undefined;
  constructor(endpoint: string, failpoint: string | undefined, message: string) {
    super(`gofail at ${endpoint}${failpoint ? ` (failpoint ${failpoint})` : ''}: ${message}`);
    this.endpoint = endpoint;
    this.failpoint = failpoint;
  }
}

export interface FailpointState {
  name: string;
  /** The active term, or "" when the failpoint is known but inactive. */
  term: string;
}

const failpointName = /^[A-Za-z][A-Za-z0-9_]*$/;

export class GofailClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;

  constructor(endpoint: string, options: { timeoutMs?: number } = {}) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /** Every failpoint compiled into the binary, with its current term. */
  async list(): Promise<FailpointState[]> {
    const text = await this.request('GET', '/', undefined, undefined);
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const eq = line.indexOf('=');
        return eq === -1 ? { name: line.trim(), term: '' } : { name: line.slice(0, eq), term: line.slice(eq + 1) };
      });
  }

  async activate(name: string, term: string): Promise<void> {
    checkName(this.endpoint, name);
    await this.request('PUT', `/${name}`, term, name);
  }

  async deactivate(name: string): Promise<void> {
    checkName(this.endpoint, name);
    await this.request('DELETE', `/${name}`, undefined, name);
  }

  private async request(method: string, path: string, body: string | undefined, name: string | undefined): Promise<string> {
    let response: Response;
    try {
      response = await fetch(`${this.endpoint}${path}`, {
        method,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new FailpointError(this.endpoint, name, `${method} ${path} failed: ${(error as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      throw new FailpointError(this.endpoint, name, `${method} ${path} answered HTTP ${response.status}: ${text.trim()}`);
    }
    return text;
  }
}

function checkName(endpoint: string, name: string): void {
  if (!failpointName.test(name)) throw new FailpointError(endpoint, name, 'not a valid failpoint name');
}
