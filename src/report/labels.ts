import type { Compare, EtcdRequest, EtcdResponse, Operation, RangeResponse, TxnOp, TxnResponse } from '../domain/index.ts';
import { isErrorResponse } from '../domain/index.ts';

// Text for the report: numbers, operation labels and durations. Plain strings: the markup escapes them.

const LABEL_PART = 18;

export function formatNumber(n: number): string {
  return n.toLocaleString('en-US');
}

export function plural(n: number, noun: string): string {
  return `${formatNumber(n)} ${noun}${n === 1 ? '' : 's'}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Control characters (a key may hold any bytes) shown visibly rather than swallowed. */
export function printable(text: string, max = LABEL_PART): string {
  // eslint-disable-next-line no-control-regex
  return truncate(text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`), max);
}

// ---------------------------------------------------------------------------------------------------
// Labels

function keyRange(key: string, end: string | undefined): string {
  if (end === undefined) return printable(key);
  if (end === '\0') return `${printable(key)}…`;
  return `[${printable(key)}, ${printable(end)})`;
}

function compareLabel(c: Compare): string {
  const value = typeof c.value === 'string' ? `"${printable(c.value, 12)}"` : String(c.value);
  return c.target === 'value' ? `${printable(c.key)} ${c.result} ${value}` : `${c.target}(${printable(c.key)}) ${c.result} ${value}`;
}

function txnOpLabel(op: TxnOp): string {
  switch (op.type) {
    case 'range':
      return `get ${keyRange(op.key, op.end)}`;
    case 'put':
      return `put ${printable(op.key)}=${printable(op.value)}`;
    case 'delete':
      return `del ${keyRange(op.key, op.end)}`;
  }
}

function rangeResult(response: RangeResponse, single: boolean): string {
  if (!single) return `${response.count ?? response.kvs.length} keys`;
  const kv = response.kvs[0];
  if (kv === undefined) return '∅';
  return kv.value === undefined ? '(key)' : printable(kv.value);
}

/** What the operation returned, for the label: ? when unknown, ✗ and the error when it failed. */
function outcome(op: Operation, describe: (response: EtcdResponse) => string): string {
  if (op.error !== undefined && op.response === undefined) return op.return === null ? ' → ?' : ` ✗ ${printable(op.error)}`;
  if (op.response === undefined) return ' → ?';
  if (isErrorResponse(op.response)) return ` ✗ ${printable(op.response.error)}`;
  const text = describe(op.response);
  return text === '' ? '' : ` → ${text}`;
}

/** A short label for a bar: `put k=v`, `get k → v`, `txn k = "a" → then put k=b`. */
export function operationLabel(op: Operation): string {
  const request: EtcdRequest = op.request;
  switch (request.type) {
    case 'range': {
      const flags = `${request.revision ? ` @${request.revision}` : ''}${request.serializable ? ' (s)' : ''}`;
      const single = request.end === undefined;
      return `get ${keyRange(request.key, request.end)}${flags}${outcome(op, (r) => rangeResult(r as RangeResponse, single))}`;
    }
    case 'put':
      return `put ${printable(request.key)}=${printable(request.value)}${outcome(op, () => '')}`;
    case 'delete':
      return `del ${keyRange(request.key, request.end)}${outcome(op, (r) => {
        const deleted = (r as { deleted?: number }).deleted;
        return deleted === undefined ? '' : `${deleted} deleted`;
      })}`;
    case 'txn': {
      const first = request.compare[0];
      const more = request.compare.length > 1 ? ` +${request.compare.length - 1}` : '';
      const condition = first === undefined ? '' : ` ${compareLabel(first)}${more}`;
      return `txn${condition}${outcome(op, (r) => {
        const succeeded = (r as TxnResponse).succeeded;
        const branch = succeeded ? request.success : request.failure;
        const head = branch[0];
        const rest = branch.length > 1 ? ` +${branch.length - 1}` : '';
        return `${succeeded ? 'then' : 'else'}${head === undefined ? '' : ` ${txnOpLabel(head)}${rest}`}`;
      })}`;
    }
    case 'leaseGrant':
      return `lease grant ${printable(request.id)} ttl=${request.ttl}${outcome(op, () => '')}`;
    case 'leaseRevoke':
      return `lease revoke ${printable(request.id)}${outcome(op, () => '')}`;
    case 'compact':
      return `compact ${request.revision}${outcome(op, () => '')}`;
    case 'defragment':
      return `defrag${outcome(op, () => '')}`;
  }
}

export function operationKind(request: EtcdRequest): 'read' | 'write' | 'txn' | 'other' {
  switch (request.type) {
    case 'range':
      return 'read';
    case 'put':
    case 'delete':
      return 'write';
    case 'txn':
      return 'txn';
    default:
      return 'other';
  }
}

// Time formatting

/** Nanoseconds of history time for the timeline's axis and notes ("1.5 ms", "3 s"). */
export function formatNanoseconds(ns: number): string {
  const abs = Math.abs(ns);
  const fixed = (v: number): string => String(Number(v.toPrecision(6)));
  if (abs < 1e3) return `${fixed(ns)} ns`;
  if (abs < 1e6) return `${fixed(ns / 1e3)} µs`;
  if (abs < 1e9) return `${fixed(ns / 1e6)} ms`;
  return `${fixed(ns / 1e9)} s`;
}

/** A 1, 2 or 5 times a power of ten step giving about `count` ticks over `span`. */
export function tickStep(span: number, count: number): number {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const multiple = [1, 2, 5, 10].find((m) => m * power >= raw) ?? 10;
  return multiple * power;
}
