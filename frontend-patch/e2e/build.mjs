// Bundles e2e/page.tsx (React 17 + antd 4 + the component) into e2e/dist/ with esbuild.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, 'dist');

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Run ingestion (e2e)</title>
<link rel="stylesheet" href="./page.css">
</head>
<body>
<div id="root"></div>
<script src="./page.js"></script>
</body>
</html>
`;

export async function buildPage() {
    mkdirSync(DIST, { recursive: true });
    await build({
        entryPoints: [join(here, 'page.tsx')],
        bundle: true,
        outfile: join(DIST, 'page.js'),
        format: 'iife',
        jsx: 'automatic',
        target: 'es2019',
        minify: true,
        sourcemap: false,
        define: { 'process.env.NODE_ENV': '"production"' },
        loader: { '.png': 'dataurl', '.svg': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl' },
        logLevel: 'warning',
    });
    writeFileSync(join(DIST, 'index.html'), HTML);
    return DIST;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    buildPage().then((dist) => console.log(`built ${dist}`));
}
