// Markup that escapes by default: html`<p>${text}</p>` escapes every interpolated string, so a value
// from the history can only ever be text. Markup built elsewhere goes in as an Html value (another
// html`...` or raw(...)), which is the one way to say "this is already HTML".

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in text and in quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** A piece of markup that is already safe: inserted as is into an html`...` template. */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

/**
 * What an html`...` template accepts: text (escaped), numbers, markup, nothing (null, undefined and
 * false render as nothing, for `${condition && html`...`}`) and arrays of these (concatenated).
 */
export type HtmlValue = Html | string | number | false | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return typeof value === 'number' ? String(value) : escapeHtml(value as string);
}

/** The tag: literal parts as written, interpolated values escaped unless they are Html. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Marks trusted markup (the page's own CSS, script and JSON data) as safe to insert unescaped. */
export function raw(text: string): Html {
  return new Html(text);
}

/** Joins markup pieces with a separator (itself literal markup, like '\n'). */
export function joinHtml(parts: readonly Html[], separator: string): Html {
  return new Html(parts.map((p) => p.text).join(separator));
}

/** JSON that cannot close its <script> element nor be read as HTML: <, > and & become \u escapes. */
export function jsonForScript(value: unknown): Html {
  return new Html(
    JSON.stringify(value)
      .replace(/</g, '\\u003c')
      .replace(/>/g, '\\u003e')
      .replace(/&/g, '\\u0026')
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029'),
  );
}
