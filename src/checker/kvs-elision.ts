/**
 * Kvs elision: recognizing the kvs arrays of operation lines as our writers write them, so a pass of the
 * streaming check can validate them without building their key-values (HistoryParserOptions.onElidedKvs)
 * or keep them as text until first access (lazyKvs). Separate from the parser: pattern matching on the
 * text of a line, not JSON validation.
 */
import type { KeyValue } from '../domain/index.ts';
import { array, parseKeyValue, plainKeyValue } from './history-lines.ts';

/** What the kvs arrays elided from one line held (see HistoryParserOptions.onElidedKvs). */
export interface ElidedKvsFields {
  /** Some key-value had a modRevision or a createRevision. */
  revision: boolean;
  /** Some key-value had a version. */
  version: boolean;
}

/** A JSON string's content without escapes (they are rare: such lines are parsed whole). */
const plainString = '[^"\\\\\\u0000-\\u001f]*';
/** An integer JSON spells, and a safe one (up to 15 digits). */
const safeInteger = '(?:0|[1-9]\\d{0,14})';
/** A key-value's revisions and version, each optional, in KeyValue's order. */
const revisions = `(?:,"modRevision":${safeInteger})?(?:,"createRevision":${safeInteger})?(?:,"version":${safeInteger})?`;
/**
 * A key-value as our writers write it: the probes' recorder (key, the revisions and version, value, lease)
 * or serializeHistory (KeyValue's order: the value before the revisions). Only key-values plainKeyValue
 * accepts match, each field at most once.
 */
const writtenKeyValue =
  `\\{"key":"${plainString}"(?:${revisions}(?:,"value":"${plainString}")?|(?:,"value":"${plainString}")?${revisions})` +
  `(?:,"lease":(?:${safeInteger}|"\\d+"|null))?\\}`;
/** The rest of a non-empty kvs array after its `[`, up to its `]`. */
const writtenKeyValues = new RegExp(`(?:${writtenKeyValue},)*${writtenKeyValue}\\]`, 'y');

/** A regular expression's test, false where it runs out of stack (a list read of very many keys). */
function matches(re: RegExp, text: string): boolean {
  try {
    return re.test(text);
  } catch {
    return false;
  }
}

/**
 * The key-values of text[start, end) (a run of writtenKeyValue, comma-separated) whose value is in `keep`,
 * comma-separated. No quote is inside a string there, so `{"key":"` opens a key-value and nothing else, and
 * after a value only integers, decimal strings or null come before its `}`.
 */
function keptKeyValues(text: string, start: number, end: number, keep: ReadonlySet<string>): string {
  const kept: string[] = [];
  for (let at = text.indexOf(',"value":"', start); at >= 0 && at < end; at = text.indexOf(',"value":"', at + 10)) {
    const close = text.indexOf('"', at + 10);
    if (!keep.has(text.slice(at + 10, close))) continue;
    kept.push(text.slice(text.lastIndexOf('{"key":"', at), text.indexOf('}', close) + 1));
  }
  return kept.join(',');
}

/**
 * The line with every `"kvs":[...]` array emptied (or holding only the key-values whose value is in
 * `keep`), when each is a run of key-values in our writers' form (writtenKeyValue) and the line has no
 * backslash (then every quote opens or closes a string, and a field named kvs is told by counting them);
 * undefined when the line has no such array or another form. An array of valid key-values replaced by
 * another such array keeps the line valid or invalid JSON alike.
 */
export function elideKvs(text: string, keep?: ReadonlySet<string>, arrays?: string[]): { text: string; fields: ElidedKvsFields } | undefined {
  let at = text.indexOf('"kvs":[');
  if (at < 0 || text.includes('\\')) return undefined;
  const fields: ElidedKvsFields = { revision: false, version: false };
  const parts: string[] = [];
  let from = 0;
  let quotes = 0;
  while (at >= 0) {
    for (let q = text.indexOf('"', from); q >= 0 && q < at; q = text.indexOf('"', q + 1)) quotes++;
    if (quotes % 2 !== 0) return undefined; // inside a string: not a field
    let end = at + 7;
    if (text.charCodeAt(end) !== 0x5d) {
      writtenKeyValues.lastIndex = end;
      if (!matches(writtenKeyValues, text)) return undefined;
      end = writtenKeyValues.lastIndex - 1;
      const kvs = text.slice(at + 7, end);
      fields.revision ||= kvs.includes('"modRevision":') || kvs.includes('"createRevision":');
      fields.version ||= kvs.includes('"version":');
      arrays?.push(kvs);
    } else arrays?.push('');
    // An even count of quotes in the array: the count stays that of the text before `from`.
    parts.push(text.slice(from, at + 7));
    if (keep !== undefined && keep.size > 0) parts.push(keptKeyValues(text, at + 7, end, keep));
    from = end;
    at = text.indexOf('"kvs":[', from);
  }
  parts.push(text.slice(from));
  return { text: parts.join(''), fields };
}

/**
 * How our writer ends a range read's line after its kvs array: the count and the revision, if any, the
 * response's closing brace, the member, if any, and the line's closing brace.
 */
const writtenRangeTail = /(?:,"count":(?:0|[1-9]\d{0,14}))?(?:,"revision":(?:0|[1-9]\d{0,14}))?\}(?:,"member":"[^"\\]*")?\}$/y;

/**
 * A range read's line as our writer writes it (writtenRangeTail after the kvs array), with a kvs array
 * opened at `start`: the array's text and the line without it, or undefined. The array ends at the line's
 * last `]` when only writtenRangeTail follows: on a valid line (the first pass validated it; a range
 * read's line has no other array) a `]` after the array would sit in a string, which the tail's first
 * quote would have to close, and no tail goes on as JSON after that. The array's text is validated where
 * it is used (the model's comparison with its own rendering, or its parse: see lazyRangeResponse).
 */
export function writtenRangeEnd(text: string, start: number): { kvs: string; elided: string } | undefined {
  if (text.includes('\\')) return undefined;
  const end = text.lastIndexOf(']');
  if (end <= start) return undefined;
  writtenRangeTail.lastIndex = end + 1;
  if (!writtenRangeTail.test(text)) return undefined;
  return { kvs: text.slice(start, end), elided: text.slice(0, start) + text.slice(end) };
}

/** The one kvs array of a line in our writer's form (elideKvs), or undefined. */
export function elidedArray(text: string): { kvs: string; elided: string } | undefined {
  const arrays: string[] = [];
  const elided = elideKvs(text, undefined, arrays);
  if (elided === undefined || arrays.length !== 1 || arrays[0] === '') return undefined;
  return { kvs: arrays[0]!, elided: elided.text };
}

/** Key-values in our writer's form, as parseResponseFor builds them; throws on anything else. */
export function parseWrittenKvs(text: string): KeyValue[] {
  return array(JSON.parse(`[${text}]`), 'response.kvs').map((kv, i) => plainKeyValue(kv) ?? parseKeyValue(kv, `response.kvs[${i}]`));
}
