/**
 * Which operations the streaming check's observation pass (stream.ts pass 2) must read: those that may
 * mention a value (told from the line's text, before parsing it), and those patch.ts needs to resolve
 * unknown-outcome deletes (lease puts, deletes at a watched revision). Separate from the passes: pure
 * predicates on lines and operations.
 */
import type { EtcdRequest, Operation } from '../domain/index.ts';
import { forEachObservedValue, writtenValues } from './patch.ts';
import { roleOf } from './roles.ts';

/** JSON's whitespace (between a field's name, the colon and its value). */
function isJsonSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * Whether an operation line may mention one of the values (mentions): false only when no string field
 * named "value" in it holds one. Much cheaper than parsing the line, and most lines mention none. A line
 * with a backslash (an escape, which could also spell a field's name) is always parsed.
 */
export function mayMention(text: string, values: ReadonlySet<string>): boolean {
  if (values.size === 0) return false;
  if (text.includes('\\')) return true;
  for (let at = text.indexOf('"value"'); at >= 0; at = text.indexOf('"value"', at + 7)) {
    let i = at + 7;
    while (isJsonSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 0x3a) continue; // a string "value", not a field named value
    i++;
    while (isJsonSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 0x22) continue; // not a string
    const end = text.indexOf('"', i + 1);
    if (end < 0) return true;
    if (values.has(text.slice(i + 1, end))) return true;
  }
  return false;
}

/** Whether an operation writes, shows or compares one of the values. */
export function mentions(op: Operation, values: Set<string>): boolean {
  if (values.size === 0) return false;
  if (writtenValues(op).some((v) => values.has(v))) return true;
  const found = { value: false };
  if (op.response !== undefined) forEachObservedValue(op.response, (value) => (found.value ||= value !== undefined && values.has(value)));
  if (found.value) return true;
  return op.request.type === 'txn' && op.request.compare.some((c) => c.target === 'value' && values.has(String(c.value)));
}

/** The puts a request makes, both txn branches' included (not only puts: leasePut skips the others). */
function requestPuts(op: Operation): readonly EtcdRequest[] {
  const { request } = op;
  return request.type === 'put' ? [request] : request.type === 'txn' ? [...request.success, ...request.failure] : [];
}

/** Whether some put of the request has a lease: the only operations on which leasePut may count. */
export function putsWithLease(op: Operation): boolean {
  return requestPuts(op).some((o) => o.type === 'put' && o.lease !== undefined);
}

/** The first put of each (lease, key): what patch.ts keysByLease needs. */
export function leasePut(op: Operation, pairs: Set<string>): boolean {
  const puts = requestPuts(op);
  let first = false;
  for (const o of puts) {
    if (o.type !== 'put' || o.lease === undefined) continue;
    const pair = `${o.lease}\u0000${o.key}`;
    if (!pairs.has(pair)) {
      pairs.add(pair);
      first = true;
    }
  }
  return first;
}

/** An acknowledged operation that may delete, at a revision a watch delivered a delete at (or at no known revision). */
export function deletesAt(op: Operation, revision: number | undefined, revisions: Set<number>): boolean {
  return mayDelete(op) && (revision === undefined || revisions.has(revision));
}

/** An acknowledged operation of a kind that may delete. */
export function mayDelete(op: Operation): boolean {
  if (roleOf(op) !== 'linearize') return false;
  const type = op.request.type;
  return type === 'delete' || type === 'leaseRevoke' || type === 'txn';
}
