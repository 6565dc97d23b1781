// The run report: a checked history (the checker's verdict, the operations, the fault lines) as one
// self-contained HTML page. A consumer of the checker's results and of the fault catalog, beside src/run/.
export { renderHtmlReport, MAX_TIMELINE_OPERATIONS } from './render.ts';
export type { HtmlReportOptions } from './render.ts';
export { escapeHtml, html, Html, joinHtml, raw } from './html.ts';
export type { HtmlValue } from './html.ts';
