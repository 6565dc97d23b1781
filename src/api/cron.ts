/**
 * The cron grammar of spec.schedule.cron, declared once for the CRD's rule and the manifest reader: the
 * five fields of an expression and the pattern both accept.
 */


/**
 * The five fields of a cron expression: the values each allows (a regular expression valid in both
 * JavaScript and Go's RE2, as the CRD's pattern is checked by the API server) and the largest step.
 * What croner accepts beyond this (`?`, `L`, `W`, `#`, seconds, `@daily`) is refused, so the file form and
 * the CRD accept the same expressions.
 */
export const cronFields = [
  { name: 'minute', values: '[0-5]?[0-9]', steps: '[1-9]|[1-5][0-9]|60', allowed: '0-59' },
  { name: 'hour', values: '[01]?[0-9]|2[0-3]', steps: '[1-9]|1[0-9]|2[0-4]', allowed: '0-23' },
  { name: 'day of month', values: '0?[1-9]|[12][0-9]|3[01]', steps: '[1-9]|[12][0-9]|3[01]', allowed: '1-31' },
  {
    name: 'month',
    values: '0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec',
    steps: '[1-9]|1[0-2]',
    allowed: '1-12 or JAN-DEC',
  },
  {
    name: 'day of week',
    values: '[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT|sun|mon|tue|wed|thu|fri|sat',
    steps: '[1-7]',
    allowed: '0-7 (0 and 7 are Sunday) or SUN-SAT',
  },
] as const;

/** One field: a list of `*`, `*\/step`, `value`, `value-value` or `value-value/step`. */
export function cronFieldPattern(values: string, steps: string): string {
  const value = `(${values})`;
  const step = `(/(${steps}))?`;
  const item = `(\\*${step}|${value}(-${value}${step})?)`;
  return `${item}(,${item})*`;
}

/** The pattern of spec.schedule.cron, in the CRD and here: five fields separated by spaces. */
export const cronPattern = `^${cronFields.map((f) => cronFieldPattern(f.values, f.steps)).join(' +')}$`;

/** What `kubectl apply` says of a cron expression the schema refuses. */
export const cronMessage = 'must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC), such as "0 3 * * *"';
