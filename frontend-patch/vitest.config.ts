import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
    resolve: {
        // The DataHub adapter (datahub/) imports DataHub modules by alias; tests point them at small stand-ins
        // and at this package's own sources, which the patch copies next to the adapter.
        alias: [
            {
                find: /^@app\/entityV2\/shared\/containers\/profile\/header\/RunIngestionButton\/(.*)$/,
                replacement: here('./src/$1'),
            },
            { find: /^@app\/entity\/shared\/EntityContext$/, replacement: here('./test/datahub-stubs/EntityContext.ts') },
            {
                find: /^@app\/sharedV2\/toastMessageUtils$/,
                replacement: here('./test/datahub-stubs/toastMessageUtils.ts'),
            },
            { find: /^@app\/useEntityRegistry$/, replacement: here('./test/datahub-stubs/useEntityRegistry.ts') },
            { find: /^@utils\/runtimeBasePath$/, replacement: here('./test/datahub-stubs/runtimeBasePath.ts') },
            { find: /^@types$/, replacement: here('./test/datahub-stubs/types.ts') },
        ],
    },
    test: {
        environment: 'jsdom',
        globals: true,
        setupFiles: ['./test/setup.ts'],
        include: ['test/**/*.test.{ts,tsx}'],
        testTimeout: 20000,
        restoreMocks: true,
    },
});
