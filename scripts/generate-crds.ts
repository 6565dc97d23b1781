// Writes the CustomResourceDefinitions to crds/ from src/controller/api (npm run generate:crds).
// test/unit/crd-drift.test.ts fails when crds/ and the generator disagree.
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crdFiles } from '../src/controller/api/index.ts';

const dir = path.join(import.meta.dirname, '..', 'crds');
const files = crdFiles();
// CRDs that no longer exist are removed; README.md is kept.
for (const name of readdirSync(dir)) {
  if (name.endsWith('.yaml') && !files.some((file) => file.fileName === name)) rmSync(path.join(dir, name));
}
for (const file of files) {
  writeFileSync(path.join(dir, file.fileName), file.content);
  console.log(`wrote crds/${file.fileName}`);
}
