/**
 * The JSON-over-HTTP plumbing the project's small servers share (the fault agent, the witness): a JSON
 * answer, and a JSON request body with a size bound, each failure a specific status and message.
 */
import type http from 'node:http';

/** An error a server answers with this status (and headers) and `{ "error": message }`. */
export class JsonHttpError extends Error {
  override name = 'JsonHttpError';
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export interface JsonBodyRules {
  maxBytes: number;
  /** What an empty body should have been, for the 400 message (e.g. `a JSON fault request`). */
  expected: string;
  /** The server's typed HTTP error. */
  error: (status: number, message: string) => Error;
}

/** The request body as JSON: 413 above maxBytes, 400 when empty or when it does not parse. */
export async function readJsonBody(req: http.IncomingMessage, rules: JsonBodyRules): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > rules.maxBytes) throw rules.error(413, `the request body is ${declared} bytes; at most ${rules.maxBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > rules.maxBytes) throw rules.error(413, `the request body is more than ${rules.maxBytes} bytes`);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw rules.error(400, `the request body is empty: send ${rules.expected}`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw rules.error(400, `the request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}
