// Screenshot of a local HTML file with the system Chromium (playwright-core; nothing downloaded).
//   node e2e/shot.mjs <page.html> <shot.png> [width]
// Used by tests/browser/test_native_places.py for its pictures of the GraphQL answers.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS } from './run.mjs';

const [page, shot, width] = process.argv.slice(2);
if (!page || !shot) {
    console.error('usage: node e2e/shot.mjs <page.html> <shot.png> [width]');
    process.exit(2);
}
const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
});
try {
    const tab = await browser.newPage({ viewport: { width: Number(width ?? 1100), height: 200 } });
    await tab.goto(pathToFileURL(resolve(page)).href, { waitUntil: 'load' });
    await tab.screenshot({ path: resolve(shot), fullPage: true });
    console.log(JSON.stringify({ ok: true, screenshot: resolve(shot) }));
} finally {
    await browser.close();
}
