// docs/architecture.md draws the import graph of src/'s folders and states their layers: this test reads
// every import under src/ and fails when the picture and the code part ways, or when a folder imports
// one in a higher layer (the layering a newcomer relies on).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..', '..');
const src = path.join(root, 'src');
const doc = readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');

/** Every .ts file under a folder. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The component a file of src/ belongs to: its top folder, `cli` for the entry point, undefined for a shared utility. */
function componentOf(file: string): string | undefined {
  const parts = path.relative(src, file).split(path.sep);
  if (parts.length > 1) return parts[0];
  return parts[0] === 'cli.ts' ? 'cli' : undefined;
}

/** Folder-to-folder imports in the code, as "from --> to". */
function codeEdges(): Set<string> {
  const edges = new Set<string>();
  for (const file of sources(src)) {
    const from = componentOf(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom '(\.{1,2}\/[^']+)'/gms)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const to = componentOf(target);
      if (from === undefined) {
        assert.equal(to, undefined, `${path.relative(root, file)} is a shared utility and may not import a folder (${m[1]})`);
        continue;
      }
      if (to !== undefined && to !== from) edges.add(`${from} --> ${to}`);
    }
  }
  return edges;
}

function docEdges(): Set<string> {
  const block = /```mermaid\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block !== undefined, 'docs/architecture.md has a mermaid block');
  return new Set([...block.matchAll(/^\s*([a-z-]+) --> ([a-z-]+)\s*$/gm)].map((m) => `${m[1]} --> ${m[2]}`));
}

/** The layer of each folder, from the table in docs/architecture.md ("| 3 | `src/probes` | ..."). */
function layers(): Map<string, number> {
  const found = new Map<string, number>();
  for (const m of doc.matchAll(/^\| (\d+) \| `src\/([a-z-]+)(?:\.ts)?` \|/gm)) found.set(m[2]!, Number(m[1]));
  return found;
}

test('the import graph in docs/architecture.md is the code\'s', () => {
  const code = codeEdges();
  const drawn = docEdges();
  const missing = [...code].filter((e) => !drawn.has(e)).sort();
  const stale = [...drawn].filter((e) => !code.has(e)).sort();
  assert.deepEqual({ missing, stale }, { missing: [], stale: [] }, 'update the mermaid block in docs/architecture.md');
});

test('every folder of src/ has a layer, and imports only folders in lower layers', () => {
  const layerOf = layers();
  const folders = readdirSync(src, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const folder of [...folders, 'cli']) assert.ok(layerOf.has(folder), `src/${folder} is in the layer table of docs/architecture.md`);
  const upward = [...codeEdges()].filter((e) => {
    const [from, to] = e.split(' --> ') as [string, string];
    return layerOf.get(from)! <= layerOf.get(to)!;
  });
  assert.deepEqual(upward, [], 'a folder imports one in its own or a higher layer');
});
