import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Bundles the admin console (console/) into `<outdir>` (default dist/console): app.js, app.css and
 * index.html, served by the service at /admin/console. Everything the page needs is in these
 * files: no CDN, nothing fetched from elsewhere.
 */
export async function buildConsole(outdir: string): Promise<void> {
  const root = projectRoot();
  const source = join(root, 'console');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await build({
    absWorkingDir: root,
    entryPoints: { app: join(source, 'src', 'main.tsx') },
    outdir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(source, 'index.html'), join(outdir, 'index.html'));
}

/** The checkout this file is in, as source (scripts/) or compiled (dist/scripts/). */
function projectRoot(): string {
  for (let directory = __dirname; ; directory = dirname(directory)) {
    if (existsSync(join(directory, 'package.json'))) {
      return directory;
    }
    if (dirname(directory) === directory) {
      throw new Error('package.json not found above the console build script');
    }
  }
}

if (require.main === module) {
  const out = process.argv[2] ?? join(projectRoot(), 'dist', 'console');
  buildConsole(resolve(out)).then(
    () => process.stdout.write(`console built into ${out}\n`),
    (error: unknown) => {
      process.stderr.write(`console build failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
