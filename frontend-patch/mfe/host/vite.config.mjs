// Builds the test host with the same federation plugin DataHub's web app uses (@originjs/vite-plugin-federation).
// The remote is registered at run time with setRemote, as DataHub does; the `remotes` entry here only makes the
// plugin generate its runtime ('virtual:__federation__').
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import federation from '@originjs/vite-plugin-federation';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
    root: here,
    base: './',
    logLevel: 'warn',
    plugins: [
        federation({
            name: 'mfe-test-host',
            remotes: { lambdaTriggerMFE: { external: '/api/ingestion/mfe/remoteEntry.js', format: 'var', from: 'webpack' } },
            shared: [],
        }),
    ],
    build: { outDir: 'dist', emptyOutDir: true, target: 'esnext', minify: 'esbuild', reportCompressedSize: false },
});
