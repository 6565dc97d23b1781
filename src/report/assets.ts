import { readFileSync } from 'node:fs';
import { raw, type Html } from './html.ts';

// The page's stylesheet and script are real files (assets/), linted and edited as CSS and browser JS,
// read beside this module: src/report/assets/ when run from the sources, dist/report/assets/ once built
// (`npm run build` and test/bin/build-images.sh copy them, since tsc copies only what it compiles).
// Inlined into each report, so the page stays one self-contained file.

let cached: { css: Html; script: Html } | undefined;

export function reportAssets(): { css: Html; script: Html } {
  cached ??= {
    css: raw(readFileSync(new URL('./assets/report.css', import.meta.url), 'utf8')),
    script: raw(readFileSync(new URL('./assets/report.js', import.meta.url), 'utf8')),
  };
  return cached;
}
