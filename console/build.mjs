// Builds the console into dist/: one bundle and one stylesheet with content hashes (cached for
// good by the server) and index.html naming them. dist/ is produced here, never edited by hand.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/assets', { recursive: true });
const result = await esbuild.build({
  entryPoints: ['src/main.tsx', 'src/style.css'],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: 'dist/assets',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.startsWith('main-') && f.endsWith('.js'));
const style = outputs.find((f) => f.startsWith('style-') && f.endsWith('.css'));
if (!script || !style) throw new Error(`unexpected outputs: ${outputs.join(', ')}`);
const html = readFileSync('src/index.html', 'utf8')
  .replace('%SCRIPT%', `/console/assets/${script}`)
  .replace('%STYLE%', `/console/assets/${style}`);
writeFileSync('dist/index.html', html);
console.log(`console built: ${script}, ${style}`);
