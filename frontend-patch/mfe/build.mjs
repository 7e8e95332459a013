#!/usr/bin/env node
// Builds the run panel as a webpack Module Federation remote that DataHub's MFE host can load.
//
//   node mfe/build.mjs [--out <dir>]      (npm run mfe:build)
//
// DataHub's host (datahub-web-react/src/app/mfeframework/MFEConfigurableContainer.tsx) loads remotes with
// @originjs/vite-plugin-federation as {format: 'var', from: 'webpack'}: it adds a <script src=remoteEntry.js>,
// reads the container from the global `window[<remote name>]`, calls `init(shareScope)` and `get('./mount')`.
// So: webpack 5's ModuleFederationPlugin, library type `var` named like the first half of `module` in
// mfe.config.yaml (`lambdaTriggerMFE/mount`), exposing `./mount`.
//
// Nothing is shared with the host: React 17 and antd 4 are bundled, so the remote does not depend on which React
// the DataHub version ships, and it renders into its own root. Styles come from the host's antd (DataHub draws
// with antd 4): the bundle adds no global CSS that could restyle DataHub.
//
// The output (remoteEntry.js plus content-hashed chunks) goes to api/lambda_trigger_api/mfe_dist/ by default,
// where the api serves it (api/lambda_trigger_api/mfe.py). Chunks are loaded relative to remoteEntry.js
// (publicPath 'auto'), so the bundle works wherever the api is mounted.
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import webpack from 'webpack';

const here = dirname(fileURLToPath(import.meta.url));
export const REMOTE_NAME = 'lambdaTriggerMFE';
export const DEFAULT_OUT = resolve(here, '../../api/lambda_trigger_api/mfe_dist');

export function config(outDir = DEFAULT_OUT) {
    return {
        mode: 'production',
        context: here,
        // The container entry is added by the plugin; no page entry is needed.
        entry: {},
        target: ['web', 'es2017'],
        devtool: false,
        output: {
            path: outDir,
            publicPath: 'auto',
            filename: '[name].[contenthash:12].js',
            chunkFilename: '[name].[contenthash:12].js',
            // A unique JSONP name: several webpack remotes (and DataHub itself) can share one page.
            uniqueName: REMOTE_NAME,
            clean: true,
        },
        resolve: { extensions: ['.tsx', '.ts', '.js', '.mjs'] },
        module: {
            rules: [
                {
                    test: /\.tsx?$/,
                    loader: 'esbuild-loader',
                    options: { target: 'es2017', jsx: 'automatic' },
                },
            ],
        },
        optimization: {
            // Stable names across builds for the same content (cache headers rely on the content hash).
            moduleIds: 'deterministic',
            chunkIds: 'deterministic',
        },
        performance: { hints: false },
        plugins: [
            new webpack.DefinePlugin({ 'process.env.NODE_ENV': JSON.stringify('production') }),
            new webpack.container.ModuleFederationPlugin({
                name: REMOTE_NAME,
                filename: 'remoteEntry.js',
                library: { type: 'var', name: REMOTE_NAME },
                exposes: { './mount': './src/mount.tsx' },
                shared: {},
            }),
        ],
    };
}

export function buildRemote(outDir = DEFAULT_OUT) {
    rmSync(outDir, { recursive: true, force: true });
    return new Promise((resolvePromise, reject) => {
        webpack(config(outDir), (error, stats) => {
            if (error) return reject(error);
            if (stats.hasErrors()) return reject(new Error(stats.toString({ all: false, errors: true })));
            const assets = stats.toJson({ all: false, assets: true }).assets.map((a) => ({ name: a.name, size: a.size }));
            resolvePromise({ outDir, assets });
        });
    });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    const at = process.argv.indexOf('--out');
    const outDir = at > 0 ? resolve(process.argv[at + 1]) : DEFAULT_OUT;
    buildRemote(outDir).then(
        ({ assets }) => {
            for (const asset of assets) console.log(`${join(outDir, asset.name)}  ${asset.size} bytes`);
        },
        (error) => {
            console.error(error.message ?? error);
            process.exit(1);
        },
    );
}
