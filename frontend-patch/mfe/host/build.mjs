// Builds the MFE test host (index.html + main.ts) into mfe/host/dist/ with vite and the federation plugin.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
export const HOST_DIST = join(here, 'dist');

export async function buildHost() {
    await build({ configFile: join(here, 'vite.config.mjs') });
    return HOST_DIST;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    buildHost().then((dist) => console.log(`built ${dist}`));
}
