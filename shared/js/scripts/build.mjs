// Build: one ES module (dist/roomstreams.js), a minified one (dist/roomstreams.min.js) and the
// type declarations (dist/types/). `--size` prints the minified+gzipped size of the browser bundle.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const onlySize = process.argv.includes('--size');

if (!onlySize) {
  rmSync(dist, { recursive: true, force: true });
  const common = {
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: ['es2020'],
    external: ['ws'],
    logLevel: 'warning',
  };
  await build({ ...common, outfile: join(dist, 'roomstreams.js'), sourcemap: true });
  await build({ ...common, outfile: join(dist, 'roomstreams.min.js'), minify: true });
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
    {
      stdio: 'inherit',
    },
  );
}

const min = readFileSync(join(dist, 'roomstreams.min.js'));
const gz = gzipSync(min, { level: 9 });
const line = {
  bundle: 'dist/roomstreams.min.js',
  minified_bytes: min.length,
  gzipped_bytes: gz.length,
  gzipped_kib: Math.round((gz.length / 1024) * 10) / 10,
};
console.log(onlySize ? JSON.stringify(line) : `built dist/: minified ${min.length} B, minified+gzipped ${gz.length} B`);
