// Browser check of the last run after a page reload: open the page, run the dataset's ingestion (click, confirm,
// wait for the final state), reload the page, and wait for the "Last run ..." line that GET /targets now carries.
// Same environment as run.mjs (DATASET_URN, API_URL, API_BEARER_TOKEN, E2E_SCREENSHOT, E2E_TIMEOUT_MS,
// CHROMIUM_PATH); E2E_SCREENSHOT is taken after the reload.
//
// Prints one JSON line {"ok", "phaseBeforeReload", "lastRun", "lastRunText", "lastRunHref", "screenshot", "error"?}
// and exits 0 when the reloaded page shows the run it started as its last run.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS } from './run.mjs';
import { startServer } from './server.mjs';

function required(name) {
    const value = process.env[name];
    if (!value) {
        console.error(`error: ${name} is required`);
        process.exit(2);
    }
    return value;
}

async function main() {
    const datasetUrn = required('DATASET_URN');
    const screenshot = resolve(required('E2E_SCREENSHOT'));
    const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 120000);
    const server = await startServer({ apiUrl: required('API_URL'), bearerToken: process.env.API_BEARER_TOKEN });
    const userDataDir = mkdtempSync(join(tmpdir(), 'run-ingestion-reload-profile-'));
    const result = { ok: false, phaseBeforeReload: null, runId: null, lastRun: null, lastRunText: null };
    let context;
    try {
        context = await chromium.launchPersistentContext(userDataDir, {
            executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
            headless: true,
            args: CHROMIUM_ARGS,
            viewport: { width: 1100, height: 240 },
        });
        const page = context.pages()[0] ?? (await context.newPage());
        page.on('response', async (response) => {
            if (new URL(response.url()).pathname === '/api/ingestion/run') {
                const body = await response.json().catch(() => null);
                if (body?.runId) result.runId = body.runId;
            }
        });
        const url = `${server.url}/?datasetUrn=${encodeURIComponent(datasetUrn)}`;
        await page.goto(url, { waitUntil: 'load' });

        const button = page.getByTestId('run-ingestion-button');
        await button.waitFor({ state: 'visible', timeout: 10000 });
        await button.click();
        const dialog = page.getByRole('dialog', { name: 'Run ingestion' });
        await dialog.waitFor({ state: 'visible', timeout: 10000 });
        await dialog.getByRole('button', { name: 'Run' }).click();
        await page.waitForFunction(
            () =>
                ['succeeded', 'failed', 'cancelled', 'lost'].includes(
                    document.querySelector('[data-testid="run-ingestion"]')?.getAttribute('data-phase') ?? '',
                ),
            undefined,
            { timeout, polling: 250 },
        );
        result.phaseBeforeReload = await page.getByTestId('run-ingestion').getAttribute('data-phase');

        // The reload: the page knows nothing but what GET /targets tells it. The run history is written just after
        // the final status, so the api may not have it on the first load: reload until it does (bounded).
        const deadline = Date.now() + timeout;
        for (;;) {
            const targets = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/ingestion/targets');
            await page.reload({ waitUntil: 'load' });
            const body = await (await targets).json().catch(() => null);
            result.lastRun = body?.lastRun ?? null;
            if (result.lastRun && result.lastRun.runId === result.runId && result.lastRun.state !== 'running') break;
            if (Date.now() > deadline) throw new Error(`no finished last run after reloads: ${JSON.stringify(body)}`);
            await page.waitForTimeout(500);
        }
        const line = page.getByTestId('run-ingestion-last-run');
        await line.waitFor({ state: 'visible', timeout: 10000 });
        result.lastRunText = (await line.textContent())?.trim() ?? null;
        result.lastRunId = await line.getAttribute('data-run-id');
        result.lastRunHref = await page.getByTestId('run-ingestion-last-run-link').getAttribute('href');
        result.ok = result.lastRunId === result.runId;
    } catch (error) {
        result.error = error instanceof Error ? error.message.split('\n')[0] : String(error);
    } finally {
        if (context) {
            try {
                const page = context.pages()[0];
                if (page) {
                    mkdirSync(dirname(screenshot), { recursive: true });
                    await page.screenshot({ path: screenshot, fullPage: true });
                    result.screenshot = screenshot;
                }
            } catch (error) {
                result.screenshotError = String(error);
            }
            await context.close().catch(() => undefined);
        }
        rmSync(userDataDir, { recursive: true, force: true });
        await server.close();
    }
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (error) => {
        console.error(error);
        process.exit(1);
    },
);
