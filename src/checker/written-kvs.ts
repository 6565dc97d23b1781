/**
 * List reads whose key-values are kept as the text our writer wrote, parsed only when something reads
 * them. Most of a history's bytes are list reads' key-values; the streaming check's last pass would build
 * millions of objects only to compare each with the model's key. Instead the model (model.ts rangeMatches)
 * renders its own keys in the writer's form and compares the text: equal text parses to exactly the
 * key-values the model expects, so the full comparison would succeed; any difference goes the full way.
 */
import type { KeyValue, RangeResponse } from '../domain/index.ts';

/** The key-values' text (between `[` and `]`) of responses made by lazyRangeResponse, while not replaced. */
const texts = new WeakMap<object, string>();

/**
 * A range response whose `kvs` is parsed from `text` (a run of key-values in the writer's form, already
 * validated: parse must not fail) on first access. The fields are in parseResponseFor's order.
 */
export function lazyRangeResponse(fields: { revision?: number; count?: number }, text: string, parse: (text: string) => KeyValue[]): RangeResponse {
  let kvs: KeyValue[] | undefined;
  const response = {} as RangeResponse;
  if (fields.revision !== undefined) response.revision = fields.revision;
  Object.defineProperty(response, 'kvs', {
    enumerable: true,
    configurable: true,
    get: () => (kvs ??= parse(text)),
    set: (value: KeyValue[]) => {
      kvs = value;
      texts.delete(response);
    },
  });
  if (fields.count !== undefined) response.count = fields.count;
  texts.set(response, text);
  return response;
}

/** The text of a response's key-values, when they are still text (lazyRangeResponse). */
export function writtenKvsText(response: object): string | undefined {
  return texts.get(response);
}

/** `into.kvs` = `from.kvs`, still as text when it is (so a copy keeps the text comparison). */
export function copyKvs(from: RangeResponse, into: Partial<RangeResponse>): void {
  const text = texts.get(from);
  if (text === undefined) {
    into.kvs = from.kvs;
    return;
  }
  Object.defineProperty(into, 'kvs', {
    enumerable: true,
    configurable: true,
    get: () => from.kvs,
    set: (value: KeyValue[]) => {
      Object.defineProperty(into, 'kvs', { value, enumerable: true, configurable: true, writable: true });
      texts.delete(into);
    },
  });
  texts.set(into, text);
}

/** A lease as plainKeyValue reads a written string back unchanged: decimal digits, not "0" (no lease). */
const leaseText = /^(?!0$)\d+$/;

/**
 * One key-value as the probes' recorder writes it (etcd-wire.ts kvFromWire: key, revisions, version,
 * value unless undefined (a keys-only read), lease), or undefined when its parse could differ (an unknown revision, a lease in another form).
 */
export function renderKeyValue(key: string, value: string | undefined, mod: number, create: number, version: number, lease: string | undefined): string | undefined {
  if (mod < 0 || create < 0 || version < 0) return undefined;
  if (lease !== undefined && !leaseText.test(lease)) return undefined;
  const shown = value === undefined ? '' : `,"value":${JSON.stringify(value)}`;
  const tail = lease === undefined ? '}' : `,"lease":"${lease}"}`;
  return `{"key":${JSON.stringify(key)},"modRevision":${mod},"createRevision":${create},"version":${version}${shown}${tail}`;
}
