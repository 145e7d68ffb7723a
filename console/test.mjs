// Runs the console's unit tests (test/*.test.ts) with node's test runner, bundled by esbuild.
import * as esbuild from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const out = '.test-build';
rmSync(out, { recursive: true, force: true });
const tests = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
await esbuild.build({
  entryPoints: tests, bundle: true, platform: 'node', format: 'esm', outdir: out, outExtension: { '.js': '.mjs' },
  logLevel: 'warning', packages: 'external',
});
const run = spawnSync(process.execPath, ['--test', ...tests.map((t) => `${out}/${t.replace(/^test\//, '').replace(/\.ts$/, '.mjs')}`)], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
process.exit(run.status ?? 1);
